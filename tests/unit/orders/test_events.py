"""orders' events through the kit's outbox (services/kit/outbox.py; the relay itself is
tested in tests/unit/kit/test_outbox.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import orjson

from services.kit.keys import DB_POOL
from services.kit.outbox import publish_batch, unpublished_count
from services.orders.app import create_app
from tests.conftest import free_port

from .conftest import STREAM, make_product


async def stream_entries(redis, count: int, patience: float = 10.0):
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        entries = await redis.xrange(STREAM)
        if len(entries) >= count or asyncio.get_running_loop().time() > deadline:
            return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
        await asyncio.sleep(0.05)


async def test_created_and_cancelled_events_reach_the_stream(client, catalog, redis):
    product = await make_product(catalog)
    order = await (
        await client.post("/api/v1/orders", json={"product_id": product, "quantity": 2})
    ).json()
    [created] = await stream_entries(redis, 1)
    assert created["type"] == "order.created"
    assert created["aggregate_id"] == str(order["id"])
    uuid.UUID(created["event_id"])
    # The order as the API shows it; the time of the change is the event's own.
    assert orjson.loads(created["payload"]) == {k: v for k, v in order.items() if k != "updated_at"}
    assert datetime.fromisoformat(created["occurred_at"]) == datetime.fromisoformat(
        order["updated_at"]
    )

    await client.post(f"/api/v1/orders/{order['id']}/cancel")
    entries = await stream_entries(redis, 2)
    assert [e["type"] for e in entries] == ["order.created", "order.cancelled"]
    assert orjson.loads(entries[1]["payload"])["status"] == "cancelled"
    assert await unpublished_count(client.server.app[DB_POOL]) == 0


async def test_a_rejected_order_has_no_event(client, catalog):
    product = await make_product(catalog, quantity=1)
    resp = await client.post("/api/v1/orders", json={"product_id": product, "quantity": 2})
    assert resp.status == 409
    assert await client.server.app[DB_POOL].fetchval("SELECT count(*) FROM outbox") == 0


async def test_orders_are_taken_while_redis_is_down_and_published_when_it_returns(
    aiohttp_client, orders_settings, catalog, redis
):
    product = await make_product(catalog)
    no_redis = await aiohttp_client(
        create_app(orders_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    )
    for _ in range(3):
        resp = await no_redis.post("/api/v1/orders", json={"product_id": product, "quantity": 1})
        assert resp.status == 201
    db = no_redis.server.app[DB_POOL]
    assert await unpublished_count(db) == 3
    # Redis is back (the relay would retry by itself; here rounds run by hand).
    async with db.acquire() as conn:
        assert await publish_batch(conn, redis, batch=2, maxlen=10_000) == {STREAM: 2}
        assert await publish_batch(conn, redis, batch=2, maxlen=10_000) == {STREAM: 1}
    assert await unpublished_count(db) == 0
    entries = await stream_entries(redis, 3)
    assert len({e["event_id"] for e in entries}) == 3
    assert [int(e["aggregate_id"]) for e in entries] == sorted(
        int(e["aggregate_id"]) for e in entries
    )


async def test_a_standby_relay_takes_over_when_the_leader_goes(
    aiohttp_client, orders_settings, catalog, redis
):
    product = await make_product(catalog)
    settings = orders_settings(outbox_standby_interval=0.1)
    body = {"product_id": product, "quantity": 1}
    leader = await aiohttp_client(create_app(settings))
    assert (await leader.post("/api/v1/orders", json=body)).status == 201
    assert len(await stream_entries(redis, 1)) == 1  # published: the first app leads
    standby = await aiohttp_client(create_app(settings))

    await leader.close()  # its relay's session ends, and the lock with it
    assert (await standby.post("/api/v1/orders", json=body)).status == 201
    assert len(await stream_entries(redis, 2)) == 2

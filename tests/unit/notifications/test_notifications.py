"""The consumer in the server's loop: each order event processed once, listed after."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import orjson
from prometheus_client import REGISTRY

from services.notifications.app import create_app
from tests.unit.conftest import truncate_all

from .conftest import STREAM


def redeliveries() -> float:
    labels = {"service": "notifications", "stream": STREAM}
    return REGISTRY.get_sample_value("stream_redeliveries_total", labels) or 0.0


def order_event(order_id: int, event_type="order.created", event_id=None, total="30.00"):
    order = {
        "id": order_id,
        "user_id": 5,
        "status": "created" if event_type == "order.created" else "cancelled",
        "items": [{"product_id": 1, "quantity": 3, "unit_price": "10.00", "line_total": total}],
        "total": total,
    }
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "aggregate_id": str(order_id),
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": orjson.dumps(order).decode(),
    }


async def listed(client, count: int, patience: float = 30.0, **params):
    """The notifications, once there are `count` of them (or patience runs out)."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        resp = await client.get("/api/v1/notifications", params={"limit": 100, **params})
        body = await resp.json()
        if body["total"] >= count or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_order_events_become_notifications(client, redis):
    created = order_event(7)
    await redis.xadd(STREAM, created)
    await redis.xadd(STREAM, order_event(7, "order.cancelled"))
    body = await listed(client, 2)
    assert body["total"] == 2
    first, second = body["items"]
    assert first["event_id"] == created["event_id"]
    assert first["event_type"] == "order.created" and first["order_id"] == 7
    assert first["user_id"] == 5
    assert first["message"] == "Order 7 placed: 1 item, total 30.00"
    assert second["message"] == "Order 7 cancelled"
    assert first["processed_at"] >= first["occurred_at"]
    assert await redis.xpending(STREAM, "notifications") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_an_event_delivered_twice_is_processed_once(client, redis):
    event = order_event(8)
    await redis.xadd(STREAM, event)
    await redis.xadd(STREAM, event)  # the relay published it again after a crash
    await redis.xadd(STREAM, order_event(9))  # a marker: once it is in, both were seen
    body = await listed(client, 2)  # the marker is processed after the duplicate
    assert [n["order_id"] for n in body["items"]] == [8, 9]


async def test_filter_by_order_and_pagination(client, redis):
    for order_id in (1, 2, 1, 3, 1):
        await redis.xadd(STREAM, order_event(order_id))
    await listed(client, 5)
    mine = await (await client.get("/api/v1/notifications", params={"order_id": 1})).json()
    assert mine["total"] == 3 and {n["order_id"] for n in mine["items"]} == {1}
    page = await (
        await client.get("/api/v1/notifications", params={"limit": 2, "offset": 4})
    ).json()
    assert page["total"] == 5 and len(page["items"]) == 1
    assert (await client.get("/api/v1/notifications", params={"order_id": "x"})).status == 400


async def test_an_invalid_event_is_set_aside_and_the_rest_flow(client, redis):
    await redis.xadd(STREAM, {"event_id": "not-a-uuid", "type": "order.created"})
    await redis.xadd(STREAM, order_event(4))
    body = await listed(client, 1)
    assert [n["order_id"] for n in body["items"]] == [4]
    dead = await redis.xrange(f"{STREAM}:dead")
    assert len(dead) == 1 and dead[0][1][b"event_id"] == b"not-a-uuid"


async def test_events_a_dead_consumer_held_are_claimed(
    aiohttp_client, databases, notifications_settings, redis
):
    """A consumer of another replica read two events and was killed before acking."""
    await truncate_all(databases["notifications"])
    await redis.xgroup_create(STREAM, "notifications", id="0", mkstream=True)
    await redis.xadd(STREAM, order_event(11))
    await redis.xadd(STREAM, order_event(12))
    taken = await redis.xreadgroup("notifications", "killed-pod-1", {STREAM: ">"}, count=2)
    assert len(taken[0][1]) == 2
    before = redeliveries()

    client = await aiohttp_client(create_app(notifications_settings(claim_idle_seconds=0.3)))
    body = await listed(client, 2)
    assert sorted(n["order_id"] for n in body["items"]) == [11, 12]
    assert (await redis.xpending(STREAM, "notifications"))["pending"] == 0
    assert redeliveries() == before + 2


async def test_metrics_and_readiness(client, redis):
    await redis.xadd(STREAM, order_event(1))
    await listed(client, 1)
    metrics = await (await client.get("/metrics")).text()
    for name in (
        'stream_events_total{outcome="processed",service="notifications",stream="orders.events"}',
        "stream_consumer_lag",
        "stream_redeliveries_total",
        'events_delay_seconds_count{service="notifications",stream="orders.events"}',
    ):
        assert name in metrics, name
    ready = await (await client.get("/readyz")).json()
    assert ready["dependencies"]["consumer"] == "ok"


async def test_the_consumer_stops_cleanly_with_the_app(
    aiohttp_client, notifications_settings, caplog
):
    from services.notifications.app import create_app

    client = await aiohttp_client(create_app(notifications_settings()))
    await listed(client, 0)
    with caplog.at_level(logging.WARNING, logger="agora.background"):
        await client.close()
    assert not [r for r in caplog.records if "did not stop" in r.getMessage()]

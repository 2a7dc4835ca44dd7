"""Crashes between the steps of placing an order, replayed step by step: whatever point
a process dies at, the order and the stock end consistent."""

from __future__ import annotations

from services.kit.keys import DB_POOL, HTTP_CLIENT
from services.orders import lifecycle, store
from services.orders.app import create_app

from .conftest import STREAM, dead_url, make_product, stock


async def begin(app, lines, key=None):
    """Step 1 of placing an order, as a request does it."""
    order, fresh = await store.start(
        app[DB_POOL], lines, None, key, lifecycle.request_hash(lines, None)
    )
    assert fresh
    return order


async def reserve(app, order, line):
    return await lifecycle.reserve_line(app[HTTP_CLIENT], order, order["items"][line], "")


async def test_a_retry_with_the_key_resumes_an_attempt_that_died(client, catalog):
    a, b = await make_product(catalog, name="A"), await make_product(catalog, name="B")
    app = client.server.app
    order = await begin(app, [(a, 2), (b, 3)], key="key-1")
    await reserve(app, order, 0)  # ... and the process was killed here
    assert await stock(catalog, a) == 8

    body = {"items": [{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 3}]}
    resp = await client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "key-1"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["id"] == order["id"]
    assert (await stock(catalog, a), await stock(catalog, b)) == (8, 7)  # each taken once


async def test_an_abandoned_attempt_is_rolled_back_and_a_late_reservation_takes_nothing(
    client, catalog
):
    a, b = await make_product(catalog, name="A"), await make_product(catalog, name="B")
    app = client.server.app
    order = await begin(app, [(a, 2), (b, 3)])
    await reserve(app, order, 0)  # killed with line 1's reservation still on the wire

    assert await lifecycle.settle_once(app) == 0  # younger than PENDING_ORDER_TIMEOUT
    assert await lifecycle.settle_once(app, pending_timeout=0) == 1
    assert (await store.get(app[DB_POOL], order["id"]))["status"] == "rejected"
    assert await stock(catalog, a) == 10

    late = await catalog.post(
        f"/api/v1/products/{b}/reservations",
        json={"reservation_id": lifecycle.reservation_id(order, 1), "quantity": 3},
    )
    assert late.status == 409
    assert await stock(catalog, b) == 10
    assert (await client.get(f"/api/v1/orders/{order['id']}")).status == 404


async def test_a_request_that_lost_the_race_to_the_reconciler_cannot_confirm(client, catalog):
    product = await make_product(catalog)
    app = client.server.app
    order = await begin(app, [(product, 4)])
    prices = await lifecycle.reserve_all(app, order, prefix="")
    assert await stock(catalog, product) == 6
    # The request stalled past the timeout; the reconciler took it for abandoned.
    assert await lifecycle.settle_once(app, pending_timeout=0) == 1
    assert await store.confirm(app[DB_POOL], STREAM, order, prices) is None
    assert await stock(catalog, product) == 10


async def test_an_abort_catalog_did_not_answer_is_finished_later(
    aiohttp_client, client, orders_settings, catalog
):
    product = await make_product(catalog)
    app = client.server.app
    order = await begin(app, [(product, 3)], key="key-1")
    await reserve(app, order, 0)
    cut_off = (await aiohttp_client(create_app(orders_settings(catalog_url=dead_url())))).app
    await lifecycle.abort(cut_off, order, None)  # catalog unreachable: cannot release
    assert (await store.get(app[DB_POOL], order["id"]))["status"] == "aborting"
    assert await stock(catalog, product) == 7

    body = {"product_id": product, "quantity": 3}
    resp = await client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "key-1"})
    assert resp.status == 503  # the attempt holding the key is being rolled back

    assert await lifecycle.settle_once(app, retry_after=0) == 1
    assert await stock(catalog, product) == 10
    # Rolled back without a verdict, the key is free again: a retry places the order.
    resp = await client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "key-1"})
    assert resp.status == 201
    assert (await resp.json())["id"] != order["id"]
    assert await stock(catalog, product) == 7


async def test_a_cancel_that_died_before_releasing_is_finished(client, catalog):
    product = await make_product(catalog)
    app = client.server.app
    resp = await client.post("/api/v1/orders", json={"product_id": product, "quantity": 4})
    order = await resp.json()
    await store.cancel(app[DB_POOL], STREAM, order["id"])  # committed, then the process died
    assert await stock(catalog, product) == 6

    assert await lifecycle.settle_once(app, retry_after=0) == 1
    assert await stock(catalog, product) == 10
    assert (await client.post(f"/api/v1/orders/{order['id']}/cancel")).status == 200
    assert await stock(catalog, product) == 10
    assert await lifecycle.settle_once(app, retry_after=0) == 0

"""Placing, reading and cancelling orders: all or nothing, idempotent, exact money."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from services.orders.app import create_app

from .conftest import dead_url, make_product, make_user, stock


async def place(client, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return await client.post("/api/v1/orders", json=body, headers=headers)


async def test_one_product(client, catalog):
    product = await make_product(catalog, quantity=10, price="19.99")
    resp = await place(client, {"product_id": product, "quantity": 2})
    assert resp.status == 201, await resp.text()
    order = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert order["status"] == "created"
    assert order["user_id"] is None
    assert order["items"] == [
        {"product_id": product, "quantity": 2, "unit_price": "19.99", "line_total": "39.98"}
    ]
    assert order["total"] == "39.98"
    assert order["created_at"]
    assert await stock(catalog, product) == 8
    got = await client.get(resp.headers["Location"])
    assert got.status == 200 and await got.json() == order


async def test_several_items_and_an_exact_total(client, catalog, users):
    """0.10 three times plus 0.20 is 0.50 exactly (as floats it would not be)."""
    a = await make_product(catalog, price="0.10", name="A")
    b = await make_product(catalog, price="0.20", name="B")
    user = await make_user(users)
    resp = await place(
        client,
        {
            "items": [{"product_id": a, "quantity": 3}, {"product_id": b, "quantity": 1}],
            "user_id": user,
        },
    )
    assert resp.status == 201, await resp.text()
    order = await resp.json()
    assert order["total"] == "0.50"
    assert [i["line_total"] for i in order["items"]] == ["0.30", "0.20"]
    assert order["user_id"] == user
    assert (await stock(catalog, a), await stock(catalog, b)) == (7, 9)


async def test_the_price_is_the_one_at_order_time(client, catalog):
    product = await make_product(catalog, price="5.00")
    order = await (await place(client, {"product_id": product, "quantity": 1})).json()
    await catalog.patch(f"/api/v1/products/{product}", json={"price": "7.00"})
    again = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert again["items"][0]["unit_price"] == "5.00"


async def test_a_missing_product_releases_the_other_items(client, catalog):
    product = await make_product(catalog, quantity=10)
    resp = await place(
        client,
        {"items": [{"product_id": product, "quantity": 4}, {"product_id": 999, "quantity": 1}]},
    )
    assert resp.status == 404
    body = await resp.json()
    assert body["error"] == "Product 999 does not exist"
    assert body["code"] == "not_found"
    assert body["details"][0]["field"] == "items.1.product_id"
    assert await stock(catalog, product) == 10
    assert (await (await client.get("/api/v1/orders")).json())["total"] == 0


async def test_short_stock_names_the_product_and_releases_everything(client, catalog):
    plenty = await make_product(catalog, quantity=10, name="Plenty")
    short = await make_product(catalog, quantity=1, name="Scarce")
    resp = await place(
        client,
        {"items": [{"product_id": plenty, "quantity": 5}, {"product_id": short, "quantity": 2}]},
    )
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == f"Product {short} (Scarce) has 1 in stock; 2 requested"
    assert body["code"] == "insufficient_stock"
    assert (await stock(catalog, plenty), await stock(catalog, short)) == (10, 1)


async def test_a_missing_user(client, catalog):
    product = await make_product(catalog)
    resp = await place(client, {"product_id": product, "quantity": 1, "user_id": 7})
    assert resp.status == 404
    assert (await resp.json())["error"] == "User 7 does not exist"
    assert await stock(catalog, product) == 10


async def test_invalid_bodies_are_400_with_details_and_change_nothing(client, catalog):
    product = await make_product(catalog)
    for body in (
        {},
        {"product_id": product},
        {"quantity": 1},
        {"product_id": product, "quantity": 0},
        {"product_id": product, "quantity": "2"},
        {"product_id": -1, "quantity": 1},
        {"product_id": product, "quantity": 1, "items": [{"product_id": product, "quantity": 1}]},
        {"items": []},
        {"items": [{"product_id": product}]},
        {"items": [{"product_id": product, "quantity": 1}] * 51},
        {"product_id": product, "quantity": 1, "user_id": "me"},
        {"product_id": product, "quantity": 1, "colour": "red"},
        [1, 2],
    ):
        resp = await place(client, body)
        assert resp.status == 400, body
        answer = await resp.json()
        assert answer["code"] == "validation_error" and answer["details"], body
    resp = await client.post(
        "/api/v1/orders", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["code"] == "malformed_json"
    resp = await place(client, {"product_id": product, "quantity": 1}, key="k" * 201)
    assert resp.status == 400
    assert (await resp.json())["details"][0]["location"] == "header"
    assert await stock(catalog, product) == 10
    assert (await (await client.get("/api/v1/orders")).json())["total"] == 0


async def test_the_same_key_and_body_answer_the_same_order_once(client, catalog):
    product = await make_product(catalog, quantity=10)
    body = {"product_id": product, "quantity": 3}
    first = await place(client, body, key="key-1")
    again = await place(client, body, key="key-1")
    assert (first.status, again.status) == (201, 201)
    assert await again.json() == await first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    # The same items written the other way are the same body.
    same = await place(client, {"items": [{"product_id": product, "quantity": 3}]}, key="key-1")
    assert (await same.json())["id"] == (await first.json())["id"]
    assert await stock(catalog, product) == 7
    assert (await (await client.get("/api/v1/orders")).json())["total"] == 1


async def test_the_same_key_with_another_body_is_unprocessable(client, catalog):
    product = await make_product(catalog, quantity=10)
    await place(client, {"product_id": product, "quantity": 3}, key="key-1")
    resp = await place(client, {"product_id": product, "quantity": 4}, key="key-1")
    assert resp.status == 422
    assert (await resp.json())["code"] == "idempotency_key_reused"
    assert await stock(catalog, product) == 7


async def test_a_rejection_is_replayed_to_the_same_key(client, catalog):
    product = await make_product(catalog, quantity=1, name="Scarce")
    body = {"product_id": product, "quantity": 2}
    first = await place(client, body, key="key-1")
    assert first.status == 409
    await catalog.patch(f"/api/v1/products/{product}", json={"quantity": 5})
    again = await place(client, body, key="key-1")
    assert again.status == 409
    assert await again.json() == await first.json()
    assert await stock(catalog, product) == 5
    assert (await place(client, body, key="key-2")).status == 201


async def test_concurrent_requests_with_one_key_place_one_order(client, catalog):
    product = await make_product(catalog, quantity=100)
    body = {"product_id": product, "quantity": 2}
    answers = await asyncio.gather(*(place(client, body, key="same") for _ in range(10)))
    assert {a.status for a in answers} == {201}
    assert len({(await a.json())["id"] for a in answers}) == 1
    assert await stock(catalog, product) == 98


async def test_concurrent_orders_never_oversell(client, catalog):
    product = await make_product(catalog, quantity=10)
    answers = await asyncio.gather(
        *(place(client, {"product_id": product, "quantity": 1}) for _ in range(30))
    )
    statuses = [a.status for a in answers]
    assert statuses.count(201) == 10 and statuses.count(409) == 20
    assert await stock(catalog, product) == 0


async def test_cancel_gives_the_stock_back_once(client, catalog):
    product = await make_product(catalog, quantity=10)
    order = await (await place(client, {"product_id": product, "quantity": 4})).json()
    for _ in range(3):
        resp = await client.post(f"/api/v1/orders/{order['id']}/cancel")
        assert resp.status == 200
        cancelled = await resp.json()
        assert cancelled["status"] == "cancelled" and cancelled["total"] == order["total"]
        assert await stock(catalog, product) == 10
    got = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert got["status"] == "cancelled"
    resp = await client.post("/api/v1/orders/12345/cancel")
    assert resp.status == 404
    assert (await resp.json())["error"] == "Order 12345 does not exist"


async def test_list_is_paginated_and_filtered_by_user(client, catalog, users):
    product = await make_product(catalog, quantity=100)
    ana, ivo = await make_user(users), await make_user(users)
    for user in (ana, ivo, ana, ana):
        resp = await place(client, {"product_id": product, "quantity": 1, "user_id": user})
        assert resp.status == 201
    page = await (await client.get("/api/v1/orders", params={"limit": 2})).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    mine = await (await client.get("/api/v1/orders", params={"user_id": ana})).json()
    assert mine["total"] == 3 and {o["user_id"] for o in mine["items"]} == {ana}
    rest = await (
        await client.get("/api/v1/orders", params={"user_id": ana, "offset": 2, "limit": 5})
    ).json()
    assert len(rest["items"]) == 1
    assert (await client.get("/api/v1/orders", params={"limit": 0})).status == 400
    assert (await client.get("/api/v1/orders/abc")).status == 400
    assert (await client.get("/api/v1/orders/999")).status == 404


async def test_catalog_unavailable_is_a_503_and_holds_nothing(
    aiohttp_client, orders_settings, catalog
):
    product = await make_product(catalog)
    orphan: TestClient = await aiohttp_client(
        create_app(orders_settings(catalog_url=dead_url(), upstream_retries=0))
    )
    resp = await place(orphan, {"product_id": product, "quantity": 1})
    assert resp.status == 503
    body = await resp.json()
    assert body["code"] == "unavailable" and body["error"].startswith("catalog is unavailable")
    assert await stock(catalog, product) == 10


async def test_users_unavailable_is_a_503(aiohttp_client, orders_settings, catalog):
    product = await make_product(catalog)
    orphan = await aiohttp_client(create_app(orders_settings(users_url=dead_url())))
    resp = await place(orphan, {"product_id": product, "quantity": 1, "user_id": 1})
    assert resp.status == 503
    assert (await resp.json())["error"].startswith("users is unavailable")
    assert await stock(catalog, product) == 10


async def test_the_largest_order_still_adds_up_exactly(client, catalog):
    product = await make_product(catalog, quantity=2_000_000, price="9999999999.99")
    resp = await place(client, {"items": [{"product_id": product, "quantity": 1_000_000}] * 2})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["total"] == "19999999999980000.00"

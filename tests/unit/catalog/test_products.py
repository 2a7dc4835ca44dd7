"""catalog's products: every endpoint and every error path, against real PostgreSQL."""

from __future__ import annotations

import io
import json

import asyncpg
import pytest

LAPTOP = {"name": "Laptop", "price": 5000, "quantity": 3}


async def create(client, **fields) -> dict:
    resp = await client.post("/api/v1/products", json={**LAPTOP, **fields})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def count_products(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM products")
    finally:
        await conn.close()


# ---------------------------------------------------------------- the happy paths


async def test_create_answers_201_with_location(client):
    resp = await client.post("/api/v1/products", json=LAPTOP)
    assert resp.status == 201
    body = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/products/{body['id']}"
    assert body["name"] == "Laptop"
    assert body["price"] == "5000.00"  # exact decimal, as a string
    assert body["quantity"] == 3
    assert body["brand_id"] is None
    assert body["created_at"] == body["updated_at"]


async def test_get_returns_what_was_created(client):
    created = await create(client)
    resp = await client.get(f"/api/v1/products/{created['id']}")
    assert resp.status == 200
    assert await resp.json() == created


async def test_price_is_exact(client):
    created = await create(client, price="0.10")
    again = await create(client, price=0.2)
    assert created["price"] == "0.10" and again["price"] == "0.20"


async def test_list_is_paginated_with_total(client):
    for index in range(5):
        await create(client, name=f"P{index}")
    resp = await client.get("/api/v1/products", params={"limit": "2", "offset": "1"})
    body = await resp.json()
    assert body["total"] == 5
    assert [item["name"] for item in body["items"]] == ["P1", "P2"]


async def test_list_default_page_size(client):
    for index in range(25):
        await create(client, name=f"P{index}")
    body = await (await client.get("/api/v1/products")).json()
    assert len(body["items"]) == 20 and body["total"] == 25


@pytest.mark.parametrize(
    "params",
    [{"limit": "101"}, {"limit": "0"}, {"offset": "-1"}, {"limit": "ten"}, {"brand_id": "x"}],
)
async def test_bad_pagination_is_400(client, params):
    resp = await client.get("/api/v1/products", params=params)
    assert resp.status == 400
    body = await resp.json()
    assert body["details"][0]["field"] == next(iter(params))


async def test_filter_by_brand(client):
    brand = await (await client.post("/api/v1/brands", json={"name": "Acme"})).json()
    await create(client, name="Branded", brand_id=brand["id"])
    await create(client, name="Plain")
    body = await (
        await client.get("/api/v1/products", params={"brand_id": str(brand["id"])})
    ).json()
    assert [item["name"] for item in body["items"]] == ["Branded"]
    assert body["total"] == 1


async def test_put_replaces_the_product(client):
    created = await create(client)
    resp = await client.put(
        f"/api/v1/products/{created['id']}",
        json={"name": "Laptop 2", "price": "4999.99", "quantity": 0},
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["name"], body["price"], body["quantity"]) == ("Laptop 2", "4999.99", 0)
    assert body["updated_at"] > created["updated_at"]
    assert body["created_at"] == created["created_at"]


async def test_put_needs_every_field(client):
    created = await create(client)
    resp = await client.put(f"/api/v1/products/{created['id']}", json={"name": "Only name"})
    assert resp.status == 400
    assert {d["field"] for d in (await resp.json())["details"]} == {"price", "quantity"}


async def test_patch_changes_only_what_is_given(client):
    created = await create(client)
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"quantity": 9})
    body = await resp.json()
    assert resp.status == 200
    assert (body["name"], body["price"], body["quantity"]) == ("Laptop", "5000.00", 9)


async def test_patch_may_clear_the_brand_but_not_the_name(client):
    brand = await (await client.post("/api/v1/brands", json={"name": "Acme"})).json()
    created = await create(client, brand_id=brand["id"])
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"brand_id": None})
    assert (await resp.json())["brand_id"] is None
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"name": None})
    assert resp.status == 400
    assert (await resp.json())["details"][0]["field"] == "name"


# PATCH reads a price as POST and PUT do (it once refused every one: issue 18).
PRICES = [
    (10, "10.00"),
    ("10", "10.00"),
    ("10.5", "10.50"),
    (10.5, "10.50"),
    (19.99, "19.99"),
    (0, "0.00"),
    ("0.01", "0.01"),
    (9999999999.99, "9999999999.99"),
    ("9999999999.99", "9999999999.99"),
    (-0.0, "0.00"),
]
BAD_PRICES = [-0.01, "-1", 10.555, "10.555", 10000000000, "1e2", " 10", "10.", ".5", "abc", True,
              None, [], "1_0", "\uff11"]  # fmt: skip


@pytest.mark.parametrize(("price", "stored"), PRICES)
async def test_patch_sets_the_price(client, price, stored):
    created = await create(client)
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"price": price})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["price"] == stored
    put = await client.put(f"/api/v1/products/{created['id']}", json={**LAPTOP, "price": price})
    assert (await put.json())["price"] == stored


@pytest.mark.parametrize("price", BAD_PRICES)
async def test_patch_refuses_a_bad_price_and_changes_nothing(client, price):
    created = await create(client)
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"price": price})
    assert resp.status == 400, await resp.text()
    assert [d["field"] for d in (await resp.json())["details"]] == ["price"]
    assert await (await client.get(f"/api/v1/products/{created['id']}")).json() == created


async def test_integral_float_is_an_integer_quantity(client):
    # JSON Schema, and so the OpenAPI document, reads 816.0 as the integer 816.
    created = await create(client, quantity=816.0)
    assert created["quantity"] == 816
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"quantity": 3.0})
    assert (await resp.json())["quantity"] == 3


async def test_empty_patch_is_400(client):
    created = await create(client)
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={})
    assert resp.status == 400


async def test_delete_then_gone(client):
    created = await create(client)
    resp = await client.delete(f"/api/v1/products/{created['id']}")
    assert resp.status == 204
    assert (await client.get(f"/api/v1/products/{created['id']}")).status == 404
    assert (await client.delete(f"/api/v1/products/{created['id']}")).status == 404


# ---------------------------------------------------------------- errors that name things


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PUT", LAPTOP), ("PATCH", {"quantity": 1}), ("DELETE", None)],
)
async def test_missing_product_is_404_naming_it(client, method, body):
    resp = await client.request(method, "/api/v1/products/6", json=body)
    assert resp.status == 404
    assert await resp.json() == {
        "error": "Product 6 does not exist",
        "code": "not_found",
        "details": [],
    }


@pytest.mark.parametrize("ident", ["abc", "1.5", "-1", "0", "99999999999999999999", "\uff11"])
async def test_non_integer_id_is_400(client, ident):
    resp = await client.get(f"/api/v1/products/{ident}")
    assert resp.status == 400
    assert (await resp.json())["details"][0]["field"] == "id"


async def test_unknown_brand_is_422_naming_it(client, catalog_dsn):
    resp = await client.post("/api/v1/products", json={**LAPTOP, "brand_id": 77})
    assert resp.status == 422
    body = await resp.json()
    assert body["error"] == "Brand 77 does not exist"
    assert body["details"][0]["field"] == "brand_id"
    assert await count_products(catalog_dsn) == 0
    created = await create(client)
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"brand_id": 77})
    assert resp.status == 422


# ---------------------------------------------------------------- bad input changes nothing

BAD_BODIES = [
    ('{"name": "X", "price": 1, ', "malformed_json"),
    ('[{"name": "X", "price": 1, "quantity": 1}]', "validation_error"),
    ('"just a string"', "validation_error"),
    ('{"name": "X", "price": "abc", "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": "1"}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": 1.5}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": true}', "validation_error"),
    ('{"name": 5, "price": 1, "quantity": 1}', "validation_error"),
    ('{"name": "", "price": 1, "quantity": 1}', "validation_error"),
    ('{"name": "   ", "price": 1, "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": -1, "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": -1}', "validation_error"),
    ('{"name": "X", "price": 1.005, "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": 1e30, "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": "NaN", "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": "Infinity", "quantity": 1}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": 99999999999999999999999}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": 2147483648}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": 1, "brand_id": 0}', "validation_error"),
    ('{"name": "X", "price": 1, "quantity": 1, "colour": "red"}', "validation_error"),
    ('{"name": "a\\u0000b", "price": 1, "quantity": 1}', "validation_error"),
    ('{"name": "' + "x" * 201 + '", "price": 1, "quantity": 1}', "validation_error"),
    ("{}", "validation_error"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_BODIES)
async def test_bad_input_is_400_and_changes_nothing(client, catalog_dsn, raw, code):
    created = await create(client)
    resp = await client.post(
        "/api/v1/products", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == code
    resp = await client.put(
        f"/api/v1/products/{created['id']}", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert await count_products(catalog_dsn) == 1
    assert await (await client.get(f"/api/v1/products/{created['id']}")).json() == created


async def test_body_over_the_limit_is_413_and_changes_nothing(client, catalog_dsn):
    body = json.dumps({**LAPTOP, "name": "x" * (2 * 1024 * 1024)}).encode()
    resp = await client.post(
        "/api/v1/products", data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert await count_products(catalog_dsn) == 0


@pytest.mark.parametrize(
    "name",
    [
        "Ćevapčići grill",
        "日本語のノート",
        "emoji 🐈‍⬛",
        "Robert'); DROP TABLE products;--",
        "1 OR 1=1",
        "<script>alert(1)</script>",
        "$1 ${name} %s",
    ],
)
async def test_unusual_names_are_stored_literally(client, catalog_dsn, name):
    created = await create(client, name=name)
    fetched = await (await client.get(f"/api/v1/products/{created['id']}")).json()
    assert fetched["name"] == name
    assert await count_products(catalog_dsn) == 1


async def test_patch_takes_a_price_as_a_decimal_string(client):
    created = await create(client)
    resp = await client.patch(f"/api/v1/products/{created['id']}", json={"price": "20.50"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["price"] == "20.50"

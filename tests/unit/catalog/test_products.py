from __future__ import annotations


async def test_create_then_get(client):
    resp = await client.post(
        "/api/v1/products", json={"name": "Laptop", "price": 5000, "quantity": 3}
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/products/{body['id']}"
    got = await client.get(resp.headers["Location"])
    assert got.status == 200
    assert (await got.json())["price"] == "5000.00"


async def test_missing_product(client):
    resp = await client.get("/api/v1/products/6")
    assert resp.status == 404
    assert await resp.json() == {
        "error": "Product 6 does not exist",
        "code": "not_found",
        "details": [],
    }

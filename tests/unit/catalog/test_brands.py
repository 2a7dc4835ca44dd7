from __future__ import annotations


async def test_create_list_and_get_brands(client):
    resp = await client.post("/api/v1/brands", json={"name": "Acme"})
    assert resp.status == 201
    brand = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/brands/{brand['id']}"
    listed = await (await client.get("/api/v1/brands")).json()
    assert listed == {"items": [brand], "total": 1}
    assert await (await client.get(f"/api/v1/brands/{brand['id']}")).json() == brand


async def test_duplicate_name_is_409_whatever_the_case(client):
    await client.post("/api/v1/brands", json={"name": "Acme"})
    resp = await client.post("/api/v1/brands", json={"name": "ACME"})
    assert resp.status == 409
    body = await resp.json()
    assert body["code"] == "conflict" and "ACME" in body["error"]
    listed = await (await client.get("/api/v1/brands")).json()
    assert listed["total"] == 1


async def test_missing_brand_is_404(client):
    resp = await client.get("/api/v1/brands/42")
    assert resp.status == 404
    assert (await resp.json())["error"] == "Brand 42 does not exist"


async def test_brand_needs_a_name(client):
    resp = await client.post("/api/v1/brands", json={"title": "Acme"})
    assert resp.status == 400
    assert {d["field"] for d in (await resp.json())["details"]} == {"name", "title"}

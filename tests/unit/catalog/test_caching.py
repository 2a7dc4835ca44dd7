"""Conditional GETs of a product: ETag, If-None-Match (fresh and stale), Cache-Control."""

from __future__ import annotations

from tests.unit.catalog.test_products import create


async def test_a_product_carries_a_validator_and_a_cache_policy(client):
    product = await create(client)
    resp = await client.get(f"/api/v1/products/{product['id']}")
    assert resp.status == 200
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    assert resp.headers["Cache-Control"] == "no-cache"  # keep it, revalidate before use
    again = await client.get(f"/api/v1/products/{product['id']}")
    assert again.headers["ETag"] == etag  # the same representation, the same tag


async def test_a_fresh_validator_is_304_without_a_body(client):
    product = await create(client)
    path = f"/api/v1/products/{product['id']}"
    etag = (await client.get(path)).headers["ETag"]
    resp = await client.get(path, headers={"If-None-Match": etag})
    assert resp.status == 304
    assert await resp.read() == b""
    assert resp.headers["ETag"] == etag
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Request-ID"]
    # a list of tags, weak forms and * match too
    for header in (f'"other", {etag}', f"W/{etag}", "*"):
        assert (await client.get(path, headers={"If-None-Match": header})).status == 304


async def test_a_stale_validator_gets_the_new_representation(client):
    product = await create(client)
    path = f"/api/v1/products/{product['id']}"
    old = (await client.get(path)).headers["ETag"]
    assert (await client.patch(path, json={"quantity": 1})).status == 200
    resp = await client.get(path, headers={"If-None-Match": old})
    assert resp.status == 200
    assert (await resp.json())["quantity"] == 1
    assert resp.headers["ETag"] != old
    fresh = await client.get(path, headers={"If-None-Match": resp.headers["ETag"]})
    assert fresh.status == 304


async def test_a_changed_stock_changes_the_tag(client):
    product = await create(client, quantity=5)
    path = f"/api/v1/products/{product['id']}"
    old = (await client.get(path)).headers["ETag"]
    reserved = await client.post(
        f"{path}/reservations", json={"reservation_id": "r-etag", "quantity": 2}
    )
    assert reserved.status == 201
    assert (await client.get(path, headers={"If-None-Match": old})).status == 200


async def test_a_missing_product_has_no_validator(client):
    resp = await client.get("/api/v1/products/999", headers={"If-None-Match": "*"})
    assert resp.status == 404
    assert "ETag" not in resp.headers


async def test_lists_carry_no_validator(client):
    await create(client)
    resp = await client.get("/api/v1/products")
    assert resp.status == 200 and "ETag" not in resp.headers


async def test_the_openapi_document_describes_the_validators(client):
    doc = await (await client.get("/api/v1/catalog/openapi.json")).json()
    get = doc["paths"]["/api/v1/products/{id}"]["get"]
    assert {"name": "If-None-Match", "in": "header"}.items() <= next(
        p for p in get["parameters"] if p["name"] == "If-None-Match"
    ).items()
    assert set(get["responses"]["200"]["headers"]) >= {"ETag", "Cache-Control", "X-Request-ID"}
    assert set(get["responses"]["304"]["headers"]) >= {"ETag", "Cache-Control", "X-Request-ID"}
    listing = doc["paths"]["/api/v1/products"]["get"]
    assert "304" not in listing["responses"]


async def test_a_malformed_validator_is_a_400_in_the_error_shape(client):
    product = await create(client)
    path = f"/api/v1/products/{product['id']}"
    # too long; a tab inside (HTTP keeps it, the documented pattern does not); not ASCII
    for header in ('"' + "x" * 1000 + '"', '"a"\t"b"', '"prix-é"'):
        resp = await client.get(path, headers={"If-None-Match": header})
        assert resp.status == 400
        body = await resp.json()
        assert body["code"] == "validation_error"
        assert body["details"][0]["field"] == "If-None-Match"
        assert body["details"][0]["location"] == "header"

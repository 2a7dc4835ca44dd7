"""catalog through the ingress: the flows a user runs, and the errors they can hit."""

from __future__ import annotations

import pytest


def make_product(agora, **fields) -> dict:
    body = {"name": "Widget", "price": "19.99", "quantity": 10, **fields}
    resp = agora.post("/api/v1/products", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_brand_and_product_lifecycle(agora, unique):
    brand = agora.post("/api/v1/brands", json={"name": f"Acme {unique}"})
    assert brand.status_code == 201
    brand_id = brand.json()["id"]
    assert agora.get(brand.headers["Location"]).json()["name"] == f"Acme {unique}"

    product = make_product(agora, name=f"Anvil {unique}", brand_id=brand_id)
    location = f"/api/v1/products/{product['id']}"
    assert agora.get(location).json() == product

    listed = agora.get("/api/v1/products", params={"brand_id": brand_id}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == product["id"]

    patched = agora.patch(location, json={"quantity": 3})
    assert patched.status_code == 200 and patched.json()["quantity"] == 3
    replaced = agora.put(location, json={"name": "Anvil II", "price": 25, "quantity": 1})
    assert replaced.json()["price"] == "25.00" and replaced.json()["brand_id"] is None

    assert agora.delete(location).status_code == 204
    gone = agora.get(location)
    assert gone.status_code == 404
    assert gone.json()["error"] == f"Product {product['id']} does not exist"


def test_duplicate_brand_is_409(agora, unique):
    assert agora.post("/api/v1/brands", json={"name": f"Dup {unique}"}).status_code == 201
    again = agora.post("/api/v1/brands", json={"name": f"DUP {unique}"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"


def test_pagination(agora, unique):
    brand_id = agora.post("/api/v1/brands", json={"name": f"Pager {unique}"}).json()["id"]
    ids = [make_product(agora, name=f"P{i}", brand_id=brand_id)["id"] for i in range(7)]
    first = agora.get("/api/v1/products", params={"brand_id": brand_id, "limit": 3}).json()
    rest = agora.get(
        "/api/v1/products", params={"brand_id": brand_id, "limit": 3, "offset": 3}
    ).json()
    assert first["total"] == rest["total"] == 7
    assert [p["id"] for p in first["items"] + rest["items"]] == ids[:6]
    assert agora.get("/api/v1/products", params={"limit": 1000}).status_code == 400


def test_unknown_brand_is_422(agora):
    resp = agora.post(
        "/api/v1/products", json={"name": "X", "price": 1, "quantity": 1, "brand_id": 9_000_000_000}
    )
    assert resp.status_code == 422
    assert resp.json()["error"] == "Brand 9000000000 does not exist"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ('{"name": "X", "price": ', 400),
        ('[{"name": "X", "price": 1, "quantity": 1}]', 400),
        ('{"name": "X", "price": -5, "quantity": 1}', 400),
        ('{"name": "X", "price": 1, "quantity": -1}', 400),
        ('{"name": "X", "price": "cheap", "quantity": 1}', 400),
        ('{"name": "X", "price": 1e308, "quantity": 1}', 400),
        ('{"name": "X", "price": 1, "quantity": 1e20}', 400),
    ],
)
def test_bad_input_changes_nothing(agora, unique, raw, status):
    brand_id = agora.post("/api/v1/brands", json={"name": f"Bad {unique}"}).json()["id"]
    product = make_product(agora, brand_id=brand_id)
    before = agora.get("/api/v1/products", params={"brand_id": brand_id}).json()
    resp = agora.post("/api/v1/products", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == status
    assert set(resp.json()) == {"error", "code", "details"}
    resp = agora.put(
        f"/api/v1/products/{product['id']}",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == status
    assert agora.get("/api/v1/products", params={"brand_id": brand_id}).json() == before


def test_body_over_the_limit_is_413(agora):
    resp = agora.post(
        "/api/v1/products", json={"name": "x" * (2 * 1024 * 1024), "price": 1, "quantity": 1}
    )
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"


def test_unicode_and_sql_looking_names_round_trip(agora):
    for name in ["Čokolada 🍫", "x'); DROP TABLE products; --"]:
        product = make_product(agora, name=name)
        assert agora.get(f"/api/v1/products/{product['id']}").json()["name"] == name


def test_non_integer_id_is_400(agora):
    resp = agora.get("/api/v1/products/abc")
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "id"


def test_conditional_get_through_the_ingress(agora, unique):
    """A client keeps a product with its ETag and revalidates it: 304 while unchanged,
    the new representation (and tag) once it changed."""
    product = make_product(agora, name=f"Tagged {unique}")
    location = f"/api/v1/products/{product['id']}"
    first = agora.get(location)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    fresh = agora.get(location, headers={"If-None-Match": etag})
    assert fresh.status_code == 304 and fresh.content == b""
    assert fresh.headers["ETag"] == etag
    assert agora.patch(location, json={"price": "20.50"}).status_code == 200
    stale = agora.get(location, headers={"If-None-Match": etag})
    assert stale.status_code == 200 and stale.json()["price"] == "20.50"
    assert stale.headers["ETag"] != etag

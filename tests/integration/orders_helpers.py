"""What the order tests (integration and fault) do through the ingress."""

from __future__ import annotations

import time

import httpx


def make_product(agora: httpx.Client, name: str, *, quantity: int, price: str = "10.00") -> int:
    resp = agora.post("/api/v1/products", json={"name": name, "price": price, "quantity": quantity})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def make_user(agora: httpx.Client, name: str, age: int = 30) -> int:
    resp = agora.post("/api/v1/users", json={"name": name, "age": age})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def stock(agora: httpx.Client, product_id: int) -> int:
    resp = agora.get(f"/api/v1/products/{product_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["quantity"]


def all_pages(agora: httpx.Client, path: str, **params: object) -> list[dict]:
    items: list[dict] = []
    while True:
        page = agora.get(path, params={**params, "limit": 100, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"] or not page["items"]:
            return items


def wait_for(condition, *, patience: float, what: str, every: float = 0.2):
    """Poll `condition()` until it returns something truthy; that value."""
    deadline = time.monotonic() + patience
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {patience} s")
        time.sleep(every)


def notifications_of(agora: httpx.Client, order_id: int) -> list[dict]:
    return agora.get("/api/v1/notifications", params={"order_id": order_id}).json()["items"]

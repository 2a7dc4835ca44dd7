"""Orders and notifications through the ingress: flows, errors, idempotency, stock."""

from __future__ import annotations

import pytest

from .orders_helpers import (
    all_pages,
    make_product,
    make_user,
    notifications_of,
    stock,
    wait_for,
)


@pytest.fixture
def product(agora, unique) -> int:
    return make_product(agora, f"Lamp {unique}", quantity=20, price="12.34")


def test_an_order_is_placed_and_can_be_read(agora, unique, product):
    user = make_user(agora, f"Ana {unique}")
    resp = agora.post(
        "/api/v1/orders", json={"product_id": product, "quantity": 3, "user_id": user}
    )
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert resp.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert order["status"] == "created" and order["user_id"] == user
    assert order["items"] == [
        {"product_id": product, "quantity": 3, "unit_price": "12.34", "line_total": "37.02"}
    ]
    assert order["total"] == "37.02"
    assert agora.get(resp.headers["Location"]).json() == order
    assert [o["id"] for o in all_pages(agora, "/api/v1/orders", user_id=user)] == [order["id"]]
    assert stock(agora, product) == 17


def test_several_items_all_or_nothing(agora, unique, product):
    other = make_product(agora, f"Shade {unique}", quantity=2, price="0.10")
    resp = agora.post(
        "/api/v1/orders",
        json={
            "items": [{"product_id": product, "quantity": 5}, {"product_id": other, "quantity": 3}]
        },
    )
    assert resp.status_code == 409
    body = resp.json()
    assert body["code"] == "insufficient_stock"
    assert body["error"] == f"Product {other} (Shade {unique}) has 2 in stock; 3 requested"
    assert (stock(agora, product), stock(agora, other)) == (20, 2)  # the lamp was released

    resp = agora.post(
        "/api/v1/orders",
        json={
            "items": [{"product_id": product, "quantity": 5}, {"product_id": other, "quantity": 2}]
        },
    )
    assert resp.status_code == 201
    assert resp.json()["total"] == "61.90"  # 5 x 12.34 + 2 x 0.10, exactly
    assert (stock(agora, product), stock(agora, other)) == (15, 0)


def test_a_missing_product_and_a_missing_user(agora, product):
    missing = agora.get("/api/v1/products", params={"limit": 1}).json()["total"] + 10_000
    resp = agora.post(
        "/api/v1/orders",
        json={
            "items": [
                {"product_id": product, "quantity": 1},
                {"product_id": missing, "quantity": 1},
            ]
        },
    )
    assert resp.status_code == 404
    assert resp.json()["error"] == f"Product {missing} does not exist"
    assert resp.json()["code"] == "not_found"
    resp = agora.post(
        "/api/v1/orders", json={"product_id": product, "quantity": 1, "user_id": 10**12}
    )
    assert resp.status_code == 404
    assert resp.json()["error"] == f"User {10**12} does not exist"
    assert stock(agora, product) == 20


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"product_id": 1},
        {"product_id": 1, "quantity": 0},
        {"product_id": 1, "quantity": 1.5},
        {"items": []},
        {"items": [{"product_id": 1, "quantity": -1}]},
        {"product_id": 1, "quantity": 1, "items": [{"product_id": 1, "quantity": 1}]},
        {"product_id": 1, "quantity": 1, "note": "x"},
        "an order",
    ],
)
def test_invalid_bodies_are_400_with_details(agora, body):
    resp = agora.post("/api/v1/orders", json=body)
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    assert answer["code"] == "validation_error" and answer["details"]


def test_malformed_json_and_bad_paths(agora):
    resp = agora.post(
        "/api/v1/orders", content=b'{"product_id": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_json"
    assert agora.get("/api/v1/orders/zero").status_code == 400
    assert agora.get(f"/api/v1/orders/{2**62}").status_code == 404
    assert agora.post(f"/api/v1/orders/{2**62}/cancel").status_code == 404
    assert agora.get("/api/v1/orders", params={"limit": 1000}).status_code == 400
    assert agora.delete("/api/v1/orders").status_code == 405


def test_an_idempotency_key_places_the_order_once(agora, unique, product):
    key = f"order-{unique}"
    body = {"product_id": product, "quantity": 2}
    first = agora.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key})
    again = agora.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stock(agora, product) == 18

    other = agora.post(
        "/api/v1/orders",
        json={"product_id": product, "quantity": 3},
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert stock(agora, product) == 18


def test_cancel_returns_the_stock_once(agora, product):
    order = agora.post("/api/v1/orders", json={"product_id": product, "quantity": 7}).json()
    assert stock(agora, product) == 13
    for _ in range(2):
        resp = agora.post(f"/api/v1/orders/{order['id']}/cancel")
        assert resp.status_code == 200
        assert resp.json()["status"] == "cancelled"
        assert stock(agora, product) == 20
    assert agora.get(f"/api/v1/orders/{order['id']}").json()["status"] == "cancelled"


def test_stock_arithmetic_over_a_mix_of_orders_and_cancels(agora, product):
    kept = 0
    for quantity in (1, 2, 3, 4, 5):
        order = agora.post(
            "/api/v1/orders", json={"product_id": product, "quantity": quantity}
        ).json()
        if quantity % 2:
            agora.post(f"/api/v1/orders/{order['id']}/cancel")
        else:
            kept += quantity
    assert (
        agora.post("/api/v1/orders", json={"product_id": product, "quantity": 15}).status_code
        == 409
    )
    assert stock(agora, product) == 20 - kept


def test_notifications_appear_for_placed_and_cancelled_orders(agora, unique, product):
    user = make_user(agora, f"Ivo {unique}")
    order = agora.post(
        "/api/v1/orders", json={"product_id": product, "quantity": 1, "user_id": user}
    ).json()
    [created] = wait_for(
        lambda: notifications_of(agora, order["id"]), patience=15, what="notification"
    )
    assert created["event_type"] == "order.created"
    assert created["user_id"] == user
    assert created["message"] == f"Order {order['id']} placed: 1 item, total 12.34"

    agora.post(f"/api/v1/orders/{order['id']}/cancel")
    notes = wait_for(
        lambda: len(n := notifications_of(agora, order["id"])) == 2 and n,
        patience=15,
        what="cancel",
    )
    assert [n["event_type"] for n in notes] == ["order.created", "order.cancelled"]
    page = agora.get("/api/v1/notifications", params={"limit": 1}).json()
    assert page["total"] >= 2 and len(page["items"]) == 1
    assert agora.get("/api/v1/notifications", params={"order_id": 0}).status_code == 400


def test_the_new_services_document_their_api(agora):
    for service, path in (("orders", "/api/v1/orders"), ("notifications", "/api/v1/notifications")):
        document = agora.get(f"/api/v1/{service}/openapi.json").json()
        assert path in document["paths"]
    document = agora.get("/api/v1/catalog/openapi.json").json()
    assert "/api/v1/products/{id}/reservations" in document["paths"]

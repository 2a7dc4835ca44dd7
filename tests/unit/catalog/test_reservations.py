"""Stock reservations: atomic, idempotent on reservation_id, never oversold."""

from __future__ import annotations

import asyncio
import random


async def make_product(client, quantity=10, price="12.50", name="Mouse") -> int:
    resp = await client.post(
        "/api/v1/products", json={"name": name, "price": price, "quantity": quantity}
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]


async def stock(client, product_id: int) -> int:
    resp = await client.get(f"/api/v1/products/{product_id}")
    return (await resp.json())["quantity"]


def reserve(client, product_id: int, rid: str, quantity: int):
    return client.post(
        f"/api/v1/products/{product_id}/reservations",
        json={"reservation_id": rid, "quantity": quantity},
    )


async def test_reserving_takes_stock_at_the_current_price(client):
    product = await make_product(client, quantity=10)
    resp = await reserve(client, product, "r-1", 3)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["id"] == "r-1" and body["product_id"] == product
    assert body["quantity"] == 3 and body["status"] == "held"
    assert body["unit_price"] == "12.50"
    assert resp.headers["Location"] == f"/api/v1/products/{product}/reservations/r-1"
    assert "Idempotent-Replayed" not in resp.headers
    assert await stock(client, product) == 7
    got = await client.get(resp.headers["Location"])
    assert got.status == 200 and (await got.json())["status"] == "held"


async def test_a_repeat_answers_the_same_and_takes_nothing_more(client):
    product = await make_product(client, quantity=10)
    first = await (await reserve(client, product, "r-1", 3)).json()
    # The price changes in between: the repeat still answers the first reservation.
    await client.patch(f"/api/v1/products/{product}", json={"price": "99.00"})
    again = await reserve(client, product, "r-1", 3)
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == first
    assert await stock(client, product) == 7


async def test_short_stock_is_a_conflict_naming_the_product_and_takes_nothing(client):
    product = await make_product(client, quantity=2, name="Keyboard")
    resp = await reserve(client, product, "r-1", 3)
    assert resp.status == 409
    body = await resp.json()
    assert body["code"] == "insufficient_stock"
    assert body["error"] == f"Product {product} (Keyboard) has 2 in stock; 3 requested"
    assert await stock(client, product) == 2
    # Nothing was recorded: the same id may be used once stock is there.
    await client.patch(f"/api/v1/products/{product}", json={"quantity": 5})
    assert (await reserve(client, product, "r-1", 3)).status == 201
    assert await stock(client, product) == 2


async def test_a_missing_product(client):
    resp = await reserve(client, 6, "r-1", 1)
    assert resp.status == 404
    assert (await resp.json())["error"] == "Product 6 does not exist"
    resp = await client.delete("/api/v1/products/6/reservations/r-1")
    assert resp.status == 404


async def test_an_id_used_for_something_else_is_unprocessable(client):
    product = await make_product(client)
    other = await make_product(client, name="Other")
    await reserve(client, product, "r-1", 3)
    for target, quantity in ((product, 4), (other, 3)):
        resp = await reserve(client, target, "r-1", quantity)
        assert resp.status == 422
        assert (await resp.json())["details"][0]["field"] == "reservation_id"
    assert await stock(client, product) == 7
    assert await stock(client, other) == 10


async def test_bad_input_is_a_400_and_changes_nothing(client):
    product = await make_product(client)
    for body in (
        {"reservation_id": "r-1", "quantity": 0},
        {"reservation_id": "r-1", "quantity": "2"},
        {"reservation_id": "", "quantity": 1},
        {"reservation_id": "has space", "quantity": 1},
        {"reservation_id": "x" * 101, "quantity": 1},
        {"quantity": 1},
        {"reservation_id": "r-1", "quantity": 1, "extra": True},
    ):
        resp = await client.post(f"/api/v1/products/{product}/reservations", json=body)
        assert resp.status == 400, body
        assert (await resp.json())["code"] == "validation_error"
    resp = await client.delete(f"/api/v1/products/{product}/reservations/bad%20id")
    assert resp.status == 400
    assert await stock(client, product) == 10


async def test_release_gives_stock_back_once(client):
    product = await make_product(client, quantity=10)
    await reserve(client, product, "r-1", 4)
    for _ in range(3):
        resp = await client.delete(f"/api/v1/products/{product}/reservations/r-1")
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "released" and body["quantity"] == 4
        assert await stock(client, product) == 10
    # A released reservation cannot be taken again under the same id.
    resp = await reserve(client, product, "r-1", 4)
    assert resp.status == 409
    assert (await resp.json())["code"] == "reservation_released"
    assert await stock(client, product) == 10


async def test_released_before_it_was_made_it_can_no_longer_be_made(client):
    """The order of arrival a retrying caller can produce: its release overtakes a POST."""
    product = await make_product(client, quantity=10)
    resp = await client.delete(f"/api/v1/products/{product}/reservations/r-late")
    assert resp.status == 200
    assert (await resp.json())["quantity"] == 0
    resp = await reserve(client, product, "r-late", 2)
    assert resp.status == 409
    assert await stock(client, product) == 10


async def test_a_reservation_of_another_product_is_not_found_here(client):
    product = await make_product(client)
    other = await make_product(client, name="Other")
    await reserve(client, product, "r-1", 2)
    resp = await client.delete(f"/api/v1/products/{other}/reservations/r-1")
    assert resp.status == 404
    assert await stock(client, product) == 8
    resp = await client.get(f"/api/v1/products/{other}/reservations/r-1")
    assert resp.status == 404


async def test_concurrent_reservations_never_oversell(client):
    product = await make_product(client, quantity=10)
    answers = await asyncio.gather(*(reserve(client, product, f"r-{n}", 1) for n in range(40)))
    statuses = [a.status for a in answers]
    assert statuses.count(201) == 10
    assert statuses.count(409) == 30
    assert await stock(client, product) == 0


async def test_concurrent_repeats_take_once(client):
    product = await make_product(client, quantity=10)
    answers = await asyncio.gather(*(reserve(client, product, "same", 2) for _ in range(20)))
    assert [a.status for a in answers] == [201] * 20
    assert await stock(client, product) == 8


async def test_concurrent_reserves_and_releases_keep_the_arithmetic(client):
    """Reserves and releases of the same ids racing each other, in random order: in the
    end the stock is the initial stock minus what is still held, never negative."""
    product = await make_product(client, quantity=30)
    rng = random.Random(4)
    calls = []
    for n in range(20):
        calls.append(reserve(client, product, f"r-{n}", rng.randint(1, 3)))
        if rng.random() < 0.5:
            calls.append(client.delete(f"/api/v1/products/{product}/reservations/r-{n}"))
    rng.shuffle(calls)
    answers = await asyncio.gather(*calls)
    assert all(a.status in (200, 201, 409) for a in answers)
    held = 0
    for n in range(20):
        resp = await client.get(f"/api/v1/products/{product}/reservations/r-{n}")
        if resp.status == 200 and (body := await resp.json())["status"] == "held":
            held += body["quantity"]
    assert await stock(client, product) == 30 - held >= 0

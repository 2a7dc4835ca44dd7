"""200 concurrent orders for a product with 50 in stock, through the ingress."""

from __future__ import annotations

import asyncio

import httpx

from .orders_helpers import all_pages, make_product, make_user, stock

ORDERS, STOCK = 200, 50


async def test_exactly_the_stock_is_sold(agora, agora_url, unique):
    product = make_product(agora, f"Scarce {unique}", quantity=STOCK, price="3.33")
    user = make_user(agora, f"Crowd {unique}")
    lowest = [STOCK]
    done = asyncio.Event()

    limits = httpx.Limits(max_connections=ORDERS + 5, max_keepalive_connections=ORDERS + 5)
    async with httpx.AsyncClient(base_url=agora_url, timeout=60, limits=limits) as client:

        async def watch_stock() -> None:  # never negative, at any moment
            while not done.is_set():
                quantity = (await client.get(f"/api/v1/products/{product}")).json()["quantity"]
                lowest[0] = min(lowest[0], quantity)
                await asyncio.sleep(0.01)

        async def order() -> httpx.Response:
            return await client.post(
                "/api/v1/orders", json={"product_id": product, "quantity": 1, "user_id": user}
            )

        watcher = asyncio.create_task(watch_stock())
        answers = await asyncio.gather(*(order() for _ in range(ORDERS)))
        done.set()
        await watcher

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(201) == STOCK, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(409) == ORDERS - STOCK
    assert all(a.json()["code"] == "insufficient_stock" for a in answers if a.status_code == 409)
    assert stock(agora, product) == 0
    assert lowest[0] >= 0
    placed = all_pages(agora, "/api/v1/orders", user_id=user)
    assert sorted(o["id"] for o in placed) == sorted(
        a.json()["id"] for a in answers if a.status_code == 201
    )

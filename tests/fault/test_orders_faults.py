"""Orders under faults, through the ingress: nothing accepted is lost, and a failing
upstream is answered quickly and recovered from without help."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from devstack.topology import workloads
from tests.integration.orders_helpers import (
    all_pages,
    make_product,
    make_user,
    stock,
    wait_for,
)

ORDERS = 500
PACE = 0.025  # seconds between order starts: ~12 s of traffic, the faults land inside it
IN_FLIGHT = 16
GIVE_UP = 120.0  # seconds a client keeps retrying one order


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def agora(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.layout.ingress_url, timeout=30) as client:
        yield client


def orders_setting(name: str) -> float:
    orders = next(w for w in workloads() if w.name == "orders")
    return float(orders.env[name])


async def unsettled_orders(stack) -> tuple[int, int]:
    """(orders not finished, outbox events not published), read from the database."""
    conn = await asyncpg.connect(stack.dsn("orders"))
    try:
        unfinished = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE status IN ('pending', 'aborting')"
        )
        unpublished = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    finally:
        await conn.close()
    return unfinished, unpublished


async def settled(stack, patience: float) -> tuple[int, int]:
    """unsettled_orders, polled until both are 0 or patience runs out; the last reading."""
    deadline = time.monotonic() + patience
    while True:
        counts = await unsettled_orders(stack)
        if counts == (0, 0) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.5)


async def place_until_created(client, semaphore, body, key) -> tuple[int, int, bool]:
    """Like a careful client: retry with the same Idempotency-Key until answered 201.
    Returns (order id, attempts, whether the 201 was of an earlier attempt's order)."""
    deadline = time.monotonic() + GIVE_UP
    attempts = 0
    while True:
        attempts += 1
        async with semaphore:
            try:
                resp = await client.post(
                    "/api/v1/orders", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                resp = None
        if resp is not None and resp.status_code == 201:
            return resp.json()["id"], attempts, "Idempotent-Replayed" in resp.headers
        if resp is not None and 400 <= resp.status_code < 500:
            raise AssertionError(f"{key}: {resp.status_code} {resp.text}")
        assert time.monotonic() < deadline, f"{key}: still failing after {GIVE_UP} s"
        await asyncio.sleep(0.2)


def disrupt(stack, log: list[str]) -> None:
    """The faults, at fixed offsets into the traffic. Each replica dies holding work:
    catalog is frozen (SIGSTOP) for a moment first, so orders-0 is killed with orders
    half placed (pending, their reservations on the wire, taken once catalog thaws);
    notifications-0 is frozen for a second first, so its consumers die holding entries
    Redis handed them."""
    started = time.monotonic()
    catalogs = ("catalog-0", "catalog-1")

    def at(offset: float, what: str) -> None:
        time.sleep(max(0.0, started + offset - time.monotonic()))
        log.append(f"{time.monotonic() - started:4.1f} s {what}")

    def send(replicas: tuple[str, ...], sig: signal.Signals) -> None:
        for replica in replicas:
            os.killpg(stack.pid(replica), sig)

    at(2, "SIGSTOP catalog")
    send(catalogs, signal.SIGSTOP)
    at(2.5, "SIGKILL orders-0")
    stack.crash("orders-0")
    at(2.7, "SIGCONT catalog")
    send(catalogs, signal.SIGCONT)
    at(4.5, "SIGSTOP notifications-0")
    send(("notifications-0",), signal.SIGSTOP)
    at(5.5, "SIGKILL notifications-0")
    stack.crash("notifications-0")
    at(7, "stop redis")
    stack.stop("redis")
    at(10.5, "start redis")
    stack.start("redis")


def redeliveries(stack) -> float:
    total = 0.0
    for replica in ("notifications-0", "notifications-1"):
        text = httpx.get(f"http://127.0.0.1:{stack.port(replica)}/metrics", timeout=5).text
        total += sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("stream_redeliveries_total{")
        )
    return total


async def test_nothing_accepted_is_lost(stack, agora, unique):
    initial = 10 * ORDERS
    product = make_product(agora, f"Widget {unique}", quantity=initial, price="2.50")
    user = make_user(agora, f"Steady {unique}")
    rng = random.Random(unique)
    quantities = [rng.randint(1, 3) for _ in range(ORDERS)]
    orders_0, notifications_0 = stack.pid("orders-0"), stack.pid("notifications-0")
    faults: list[str] = []

    semaphore = asyncio.Semaphore(IN_FLIGHT)
    async with httpx.AsyncClient(base_url=stack.layout.ingress_url, timeout=20) as client:

        async def one(n: int) -> tuple[int, int, bool]:
            await asyncio.sleep(n * PACE)
            body = {"product_id": product, "quantity": quantities[n], "user_id": user}
            return await place_until_created(client, semaphore, body, f"{unique}-{n}")

        disruption = asyncio.create_task(asyncio.to_thread(disrupt, stack, faults))
        results = await asyncio.gather(*(one(n) for n in range(ORDERS)))
        await disruption

    stack.wait_running("orders-0", other_than=orders_0)
    stack.wait_running("notifications-0", other_than=notifications_0)
    assert len(faults) == 7, faults

    # Every order answered 201 exists exactly once, with what was asked.
    answered = {order_id: quantities[n] for n, (order_id, *_) in enumerate(results)}
    assert len(answered) == ORDERS, "two keys were answered with the same order"
    placed = all_pages(agora, "/api/v1/orders", user_id=user)
    assert sorted(o["id"] for o in placed) == sorted(answered)
    assert all(o["items"][0]["quantity"] == answered[o["id"]] for o in placed)

    # The stock is the initial stock minus what the orders hold (once attempts a crash
    # left unfinished are settled).
    expected = initial - sum(quantities)
    wait_for(lambda: stock(agora, product) == expected, patience=60, what="stock settles")
    assert await settled(stack, patience=60) == (0, 0)  # (unfinished orders, unsent events)

    # Every order has exactly one notification.
    def notified() -> Counter | None:
        counts = Counter(
            n["order_id"]
            for n in all_pages(agora, "/api/v1/notifications")
            if n["order_id"] in answered
        )
        return counts if len(counts) == ORDERS else None

    counts = wait_for(notified, patience=90, what="a notification for every order", every=1)
    assert set(counts.values()) == {1}
    retried = [attempts for _, attempts, _ in results if attempts > 1]
    earlier = sum(replayed for *_, replayed in results)
    print(
        f"\nfaults: {faults}\norders retried: {len(retried)} (most attempts:"
        f" {max(retried, default=1)}), answered with an earlier attempt's order: {earlier};"
        f" stream entries redelivered: {redeliveries(stack):.0f}"
    )


def test_catalog_down_is_a_quick_503_and_orders_recover_by_themselves(stack, agora, unique):
    product = make_product(agora, f"Gadget {unique}", quantity=10)
    timeout = orders_setting("REQUEST_TIMEOUT")
    catalogs = [f"catalog-{n}" for n in range(2)]
    for name in catalogs:
        stack.stop(name)
    try:
        for _ in range(8):  # the breaker opens on the way: later answers come faster
            started = time.monotonic()
            resp = agora.post("/api/v1/orders", json={"product_id": product, "quantity": 1})
            elapsed = time.monotonic() - started
            assert resp.status_code == 503, resp.text
            body = resp.json()
            assert body["code"] == "unavailable" and body["error"].startswith("catalog")
            assert elapsed < timeout, f"answered after {elapsed:.2f} s"
        assert agora.get("/api/v1/orders", params={"limit": 1}).status_code == 200
    finally:
        stack.start_ready(catalogs)

    def placed() -> httpx.Response | None:
        resp = agora.post("/api/v1/orders", json={"product_id": product, "quantity": 1})
        return resp if resp.status_code == 201 else None

    wait_for(placed, patience=30, what="orders recover", every=0.5)
    # The attempts made while catalog was down were left aborting (their releases could
    # not be sent); the reconciler finishes them, and they hold no stock.
    unfinished, _ = asyncio.run(settled(stack, patience=40))
    assert unfinished == 0
    assert stock(agora, product) == 9


@pytest.mark.parametrize("replica", ["notifications-1", "orders-1"])
def test_sigterm_stops_the_background_loops_cleanly(stack, replica):
    old = stack.pid(replica)
    before = len(stack.log(replica))
    clean_exit = f"exited: {replica} (exit status 0; expected)"
    exits_before = stack.log("supervisord").count(clean_exit)
    os.kill(old, signal.SIGTERM)
    stack.wait_running(replica, other_than=old)
    stack.wait_ready(stack.port(replica))
    shutdown = stack.log(replica)[before:]
    workers = next(w.workers for w in workloads() if w.name == replica.rsplit("-", 1)[0])
    loops = {"notifications-1": ["consumer"], "orders-1": ["outbox-relay", "reconciler"]}[replica]
    for loop in loops:
        assert shutdown.count(f"background loop {loop} stopped") == workers, shutdown[-3000:]
    assert "did not stop" not in shutdown
    assert "Traceback" not in shutdown
    assert stack.log("supervisord").count(clean_exit) == exits_before + 1

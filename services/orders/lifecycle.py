"""How an order is placed, cancelled, and settled after a crash.

Placing an order spans two databases over HTTP (the stock is catalog's, the order is
ours) and no transaction covers both. So the steps are ordered such that a crash
(SIGKILL) between any two of them leaves a state that something finishes: never stock
taken without an order, nor an order without its stock, for longer than it takes to
notice.

1. Commit a `pending` order (with its items) before touching any stock. Its random `ref`
   names its reservations deterministically: line n is reserved as `ord-<ref>-<n>`.
2. Reserve every line in catalog under those ids (concurrently). catalog is idempotent on
   the id, so repeating a reservation (a retry, a resumed attempt) never takes twice.
3. Commit `pending -> created` together with its `order.created` outbox event, and
   answer 201. This conditional UPDATE is the commit point: the order exists from here.

Every failure goes through one conditional step, `pending -> aborting`, after which
nothing can confirm the order; then every line's reservation id is released (catalog
gives stock back once, and records the release of a reservation it has not seen yet, so
a reservation still on its way can no longer take stock); then `aborting -> rejected`.
- A missing product (404) or short stock (409): rejected at once; the answer is kept
  and replayed to the same Idempotency-Key.
- catalog unavailable or too slow (503/504): rejected the same way, but the key is freed
  so that a retry with it places the order anew.
- The process dies between steps 1 and 3: the order stays `pending`. A retry with the
  same Idempotency-Key resumes it (steps 2 and 3 again, idempotent). Without one, the
  reconciler (a background loop in every worker) aborts pending orders older than
  PENDING_ORDER_TIMEOUT.
- The process dies while aborting (or catalog is down then): the order stays `aborting`
  and the reconciler finishes the release when catalog answers again.

Cancelling commits `created -> cancelled` with its `order.cancelled` event first, then
releases the reservations; `stock_returned` records that the stock is back, and the
reconciler releases again for cancelled orders without it.

A request racing the reconciler, or a parallel retry of itself, is safe: whichever moves
the order out of `pending` first wins, and the other reports the winner's outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Gauge

from services.kit.background import sleep_unless
from services.kit.db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from services.kit.errors import ApiError, not_found
from services.kit.http_client import HttpClient, UpstreamResponse
from services.kit.keys import DB_POOL, HTTP_CLIENT, SETTINGS

from . import store
from .models import OrderIn

log = logging.getLogger("agora.orders")

SETTLED = Counter(
    "orders_settled_total",
    "Orders a crash or an outage left unfinished, settled by the reconciler.",
    ("service", "action"),
)
UNSETTLED = Gauge(
    "orders_unsettled",
    "Orders pending, aborting, or cancelled with their stock not yet returned.",
    ("service",),
    multiprocess_mode="livemostrecent",
)

Order = dict[str, Any]


def reservation_id(order: Order, line: int) -> str:
    return f"ord-{order['ref']}-{line}"


def request_hash(lines: Sequence[tuple[int, int]], user_id: int | None) -> str:
    """What "the same body" means for an Idempotency-Key: the same items and user."""
    canonical = orjson.dumps({"items": lines, "user_id": user_id})
    return hashlib.sha256(canonical).hexdigest()


def _field(name: str, message: str, kind: str) -> dict[str, str]:
    return {"field": name, "location": "body", "message": message, "type": kind}


def _answer(response: UpstreamResponse) -> dict[str, Any]:
    try:
        body = response.json()
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _unexpected(upstream: str, response: UpstreamResponse) -> ApiError:
    return ApiError(502, f"{upstream} answered {response.status} unexpectedly")


# ---------------------------------------------------------------- placing


async def place(app: web.Application, body: OrderIn, key: str | None) -> tuple[Order, bool]:
    """Place the order, or answer what the attempt holding `key` did.
    Returns (the order, whether an earlier request with this key had created it)."""
    db, client = app[DB_POOL], app[HTTP_CLIENT]
    lines = [(item.product_id, item.quantity) for item in body.lines()]
    if body.user_id is not None:
        await check_user(client, body.user_id)
    digest = request_hash(lines, body.user_id)
    order, fresh = await store.start(db, lines, body.user_id, key, digest)
    if not fresh:
        if order["request_hash"] != digest:
            raise ApiError(
                422,
                f"Idempotency-Key {key} was already used with a different body",
                code="idempotency_key_reused",
            )
        if order["status"] != "pending":
            return outcome(order), True
        # pending: the attempt that holds the key died (or is still running): resume.
    prices = await reserve_all(app, order, prefix="items." if body.has_items else "")
    confirmed = await store.confirm(db, app[SETTINGS].events_stream, order, prices)
    if confirmed is None:  # a parallel attempt confirmed it, or someone aborted it
        current = await store.get(db, order["id"])
        assert current is not None
        return outcome(current), True
    return confirmed, not fresh


def outcome(order: Order) -> Order:
    """A finished attempt as its answer: the order, or the error it ended with."""
    if order["status"] in ("created", "cancelled"):
        return order
    if rejection := order["rejection"]:
        raise ApiError(
            rejection["status"],
            rejection["error"],
            code=rejection["code"],
            details=rejection["details"],
        )
    raise ApiError(
        503,
        "An earlier attempt with this Idempotency-Key is being rolled back; retry shortly",
        headers={"Retry-After": "1"},
    )


async def check_user(client: HttpClient, user_id: int) -> None:
    response = await client.get("users", f"/api/v1/users/{user_id}")
    if response.status == 404:
        raise ApiError(
            404,
            f"User {user_id} does not exist",
            details=[_field("user_id", "no such user", "not_found")],
        )
    if response.status != 200:
        raise _unexpected("users", response)


async def reserve_all(app: web.Application, order: Order, *, prefix: str) -> list[Decimal]:
    """Each line's unit price; on any failure every line is released and it raises."""
    client = app[HTTP_CLIENT]
    results = await asyncio.gather(
        *(reserve_line(client, order, item, prefix) for item in order["items"]),
        return_exceptions=True,
    )
    errors = [result for result in results if isinstance(result, BaseException)]
    if not errors:
        return results  # type: ignore[return-value]
    for error in errors:
        if not isinstance(error, ApiError):
            raise error  # cancelled, or a bug: the order stays pending for the reconciler
    api_errors: list[ApiError] = errors  # type: ignore[assignment]
    verdict = next((e for e in api_errors if e.status in (404, 409)), None)
    rejection = None
    if verdict is not None:
        rejection = {
            "status": verdict.status,
            "error": verdict.message,
            "code": verdict.code,
            "details": verdict.details,
        }
    await abort(app, order, rejection)
    raise verdict or api_errors[0]


async def reserve_line(client: HttpClient, order: Order, item: Order, prefix: str) -> Decimal:
    product_id, line = item["product_id"], item["line"]
    rid = reservation_id(order, line)
    response = await client.post(
        "catalog",
        f"/api/v1/products/{product_id}/reservations",
        json={"reservation_id": rid, "quantity": item["quantity"]},
        idempotency_key=rid,  # safe to retry: catalog is idempotent on reservation_id
    )
    answer = _answer(response)
    if response.status == 201:
        return Decimal(answer["unit_price"])
    where = f"{prefix}{line}." if prefix else ""
    if response.status == 404:
        raise ApiError(
            404,
            f"Product {product_id} does not exist",
            details=[_field(f"{where}product_id", "no such product", "not_found")],
        )
    if response.status == 409 and answer.get("code") == "insufficient_stock":
        raise ApiError(
            409,
            answer["error"],
            code="insufficient_stock",
            details=[_field(f"{where}quantity", "more than is in stock", "insufficient_stock")],
        )
    if response.status == 409:  # reservation_released: aborted by someone else meanwhile
        raise ApiError(503, "The order was rolled back while it was being placed; retry")
    raise _unexpected("catalog", response)


async def abort(app: web.Application, order: Order, rejection: dict[str, Any] | None) -> None:
    if await store.claim_abort(app[DB_POOL], order["id"], rejection):
        await finish_abort(app, order)


async def finish_abort(app: web.Application, order: Order) -> bool:
    """Release every line of an `aborting` order, then mark it rejected. False if catalog
    could not be reached: the reconciler tries again."""
    if not await _release_all(app, order):
        return False
    await store.reject(app[DB_POOL], order["id"])
    return True


async def _release_all(app: web.Application, order: Order) -> bool:
    client = app[HTTP_CLIENT]
    calls = [
        client.delete(
            "catalog",
            f"/api/v1/products/{item['product_id']}/reservations/"
            f"{reservation_id(order, item['line'])}",
        )
        for item in order["items"]
    ]
    for result in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(result, ApiError):
            log.warning("releasing order %s: %s", order["id"], result.message)
            return False
        if isinstance(result, BaseException):
            raise result
        # 404: the product is gone, and with it anything it held.
        if result.status not in (200, 404):
            log.warning("releasing order %s: catalog answered %s", order["id"], result.status)
            return False
    return True


# ---------------------------------------------------------------- cancelling


async def cancel(app: web.Application, order_id: int) -> Order:
    """Cancel a created order and give its stock back, once; a repeat answers the same."""
    order = await store.cancel(app[DB_POOL], app[SETTINGS].events_stream, order_id)
    if order is None:
        raise not_found("Order", order_id)
    if not order["stock_returned"]:
        await return_stock(app, order)
    return order


async def return_stock(app: web.Application, order: Order) -> bool:
    if not await _release_all(app, order):
        return False
    await store.mark_stock_returned(app[DB_POOL], order["id"])
    return True


# ---------------------------------------------------------------- settling


async def settle_once(
    app: web.Application,
    *,
    pending_timeout: float | None = None,
    retry_after: float | None = None,
) -> int:
    """One round of the reconciler: finish what crashes and outages left unfinished.
    Pending orders older than pending_timeout are rolled back; aborts and stock returns
    that failed are retried after retry_after (default: the settings')."""
    settings = app[SETTINGS]
    db = app[DB_POOL]
    orders = await store.lease_unsettled(
        db,
        pending_timeout=settings.pending_order_timeout
        if pending_timeout is None
        else pending_timeout,
        retry_after=settings.reconcile_interval if retry_after is None else retry_after,
        limit=50,
    )
    settled = 0
    for order in orders:
        if order["status"] == "aborting":
            done, action = await finish_abort(app, order), "aborted"
        else:
            done, action = await return_stock(app, order), "stock_returned"
        if done:
            log.info("settled order %s: %s", order["id"], action)
            SETTLED.labels(settings.service_name, action).inc()
            settled += 1
    UNSETTLED.labels(settings.service_name).set(await store.unsettled_count(db))
    return settled


async def reconciler(app: web.Application, stopping: asyncio.Event) -> None:
    """A loop for services.kit.background, in every worker (replicas lease different
    orders)."""
    interval = app[SETTINGS].reconcile_interval
    while not await sleep_unless(stopping, interval):
        try:
            await settle_once(app)
        except DB_CONNECTION_ERRORS as error:
            log.warning("reconciler: database unavailable (%r)", error)

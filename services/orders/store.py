"""The SQL of orders: orders with their items, and the outbox beside them.

Every change of an order's status is a conditional UPDATE (`... WHERE status = <what the
caller saw>`), so two parties racing over one order (a request and its retry, a request
and the reconciler) can never both move it: one wins, the other learns it lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.kit import outbox
from services.kit.db import fetch_page

Row = dict[str, Any]
ORDER_COLUMNS = (
    "id, ref, user_id, status, total, idempotency_key, request_hash, rejection,"
    " stock_returned, created_at, updated_at"
)
VISIBLE = "status IN ('created', 'cancelled')"
CENTS = Decimal("0.01")


def line_total(item: Row) -> Decimal:
    return (item["unit_price"] * item["quantity"]).quantize(CENTS)


def public(order: Row) -> Row:
    """An order as the API shows it."""
    return {
        "id": order["id"],
        "user_id": order["user_id"],
        "status": order["status"],
        "items": [
            {
                "product_id": item["product_id"],
                "quantity": item["quantity"],
                "unit_price": item["unit_price"],
                "line_total": line_total(item),
            }
            for item in order["items"]
        ],
        "total": order["total"],
        "created_at": order["created_at"],
        "updated_at": order["updated_at"],
    }


async def _with_items(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[Row]:
    orders = [dict(row) for row in rows]
    if not orders:
        return []
    by_id = {order["id"]: order for order in orders}
    for order in orders:
        order["items"] = []
        if order["rejection"] is not None:
            order["rejection"] = orjson.loads(order["rejection"])
    for item in await conn.fetch(
        "SELECT order_id, line, product_id, quantity, unit_price FROM order_items"
        " WHERE order_id = ANY($1::bigint[]) ORDER BY order_id, line",
        list(by_id),
    ):
        by_id[item["order_id"]]["items"].append(dict(item))
    return orders


async def _one(conn: asyncpg.Connection, row: asyncpg.Record | None) -> Row | None:
    return (await _with_items(conn, [row]))[0] if row is not None else None


# ---------------------------------------------------------------- placing


# One statement (atomic by itself, one round trip): the order and its items.
_START = f"""
WITH placed AS (
    INSERT INTO orders (user_id, idempotency_key, request_hash) VALUES ($1, $2, $3)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {ORDER_COLUMNS}
), items AS (
    INSERT INTO order_items (order_id, line, product_id, quantity)
    SELECT placed.id, t.line - 1, t.product_id, t.quantity
    FROM placed, unnest($4::bigint[], $5::int[]) WITH ORDINALITY AS t (product_id, quantity, line)
)
SELECT * FROM placed
"""


async def start(
    db: asyncpg.Pool,
    lines: Sequence[tuple[int, int]],
    user_id: int | None,
    idempotency_key: str | None,
    request_hash: str,
) -> tuple[Row, bool]:
    """A new pending order with its items, or the attempt that already holds the
    idempotency key. Returns (order, True if it was created now)."""
    products = [product for product, _ in lines]
    quantities = [quantity for _, quantity in lines]
    async with db.acquire() as conn:
        while True:
            row = await conn.fetchrow(
                _START, user_id, idempotency_key, request_hash, products, quantities
            )
            if row is not None:
                items = [
                    {"line": line, "product_id": product, "quantity": quantity, "unit_price": None}
                    for line, (product, quantity) in enumerate(lines)
                ]
                return {**dict(row), "items": items}, True
            existing = await conn.fetchrow(
                f"SELECT {ORDER_COLUMNS} FROM orders WHERE idempotency_key = $1", idempotency_key
            )
            if existing is not None:
                return await _one(conn, existing), False  # type: ignore[return-value]
            # The attempt holding the key was rolled back and let it go meanwhile: insert.


def event_payload(order: Row) -> Row:
    """An event carries the order as the API shows it; the time of the change is the
    event's own (occurred_at), so the order's updated_at is left out."""
    shown = public(order)
    del shown["updated_at"]
    return shown


# One statement, so one round trip and atomic: the status, the prices, the event (in the
# kit's outbox; pg_notify wakes the relay on commit, as outbox.write would).
_CONFIRM = f"""
WITH confirmed AS (
    UPDATE orders SET status = 'created', total = $2, updated_at = now()
    WHERE id = $1 AND status = 'pending'
    RETURNING id, updated_at
), priced AS (
    UPDATE order_items SET unit_price = p.price
    FROM confirmed, unnest($3::numeric[]) WITH ORDINALITY AS p (price, line)
    WHERE order_items.order_id = confirmed.id AND order_items.line = p.line - 1
), event AS (
    INSERT INTO {outbox.OUTBOX_COLUMNS}
    SELECT $5, 'order.created', id::text, $4::jsonb FROM confirmed
)
SELECT updated_at, pg_notify('{outbox.CHANNEL}', '') FROM confirmed
"""


async def confirm(
    db: asyncpg.Pool, stream: str, order: Row, prices: Sequence[Decimal]
) -> Row | None:
    """pending -> created, with the unit prices its reservations answered (one per line)
    and its order.created event. None if the order is no longer pending."""
    items = [
        {**item, "unit_price": price} for item, price in zip(order["items"], prices, strict=True)
    ]
    total = sum((line_total(item) for item in items), Decimal("0.00"))
    confirmed = {**order, "status": "created", "total": total, "items": items}
    payload = outbox.encode_payload(event_payload(confirmed))
    row = await db.fetchrow(_CONFIRM, order["id"], total, list(prices), payload, stream)
    if row is None:
        return None
    return {**confirmed, "updated_at": row["updated_at"]}


async def claim_abort(db: asyncpg.Pool, order_id: int, rejection: Row | None) -> bool:
    """pending -> aborting: from now on nobody can confirm it. `rejection` is the 404/409
    to answer to the same key again; None frees the key once the abort is done."""
    done = await db.fetchval(
        "UPDATE orders SET status = 'aborting', rejection = $2::jsonb, updated_at = now()"
        " WHERE id = $1 AND status = 'pending' RETURNING id",
        order_id,
        None if rejection is None else orjson.dumps(rejection).decode(),
    )
    return done is not None


async def reject(db: asyncpg.Pool, order_id: int) -> None:
    """aborting -> rejected, once its reservations are released."""
    await db.execute(
        "UPDATE orders SET status = 'rejected', updated_at = now(),"
        " idempotency_key = CASE WHEN rejection IS NULL THEN NULL ELSE idempotency_key END"
        " WHERE id = $1 AND status = 'aborting'",
        order_id,
    )


# ---------------------------------------------------------------- reading


async def get(db: asyncpg.Pool, order_id: int) -> Row | None:
    async with db.acquire() as conn:
        row = await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
        return await _one(conn, row)


async def list_visible(
    db: asyncpg.Pool, limit: int, offset: int, user_id: int | None
) -> tuple[list[Row], int]:
    source = f"orders WHERE {VISIBLE} AND ($1::bigint IS NULL OR user_id = $1)"
    async with db.acquire() as conn:
        rows, total = await fetch_page(conn, ORDER_COLUMNS, source, (user_id,), limit, offset)
        return await _with_items(conn, rows), total


# ---------------------------------------------------------------- cancelling


async def cancel(db: asyncpg.Pool, stream: str, order_id: int) -> Row | None:
    """created -> cancelled with its order.cancelled event; a cancelled order as it is.
    None if there is no such (visible) order."""
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE orders SET status = 'cancelled', updated_at = now()"
            f" WHERE id = $1 AND status = 'created' RETURNING {ORDER_COLUMNS}",
            order_id,
        )
        if row is not None:
            order = await _one(conn, row)
            assert order is not None
            await outbox.write(conn, stream, "order.cancelled", order["id"], event_payload(order))
            return order
        row = await conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND status = 'cancelled'",
            order_id,
        )
        return await _one(conn, row)


async def mark_stock_returned(db: asyncpg.Pool, order_id: int) -> None:
    await db.execute("UPDATE orders SET stock_returned = true WHERE id = $1", order_id)


# ---------------------------------------------------------------- settling


async def lease_unsettled(
    db: asyncpg.Pool, *, pending_timeout: float, retry_after: float, limit: int
) -> list[Row]:
    """Orders a crash left unfinished, leased to this caller for `retry_after` seconds
    (SKIP LOCKED: replicas take different ones). Pending ones older than pending_timeout
    are claimed for abort (-> aborting) in the same statement."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "UPDATE orders SET updated_at = now(),"
            " status = CASE WHEN status = 'pending' THEN 'aborting' ELSE status END"
            " WHERE id IN ("
            "   SELECT id FROM orders WHERE"
            "     (status = 'pending' AND updated_at < now() - make_interval(secs => $1))"
            "     OR ((status = 'aborting' OR (status = 'cancelled' AND NOT stock_returned))"
            "         AND updated_at < now() - make_interval(secs => $2))"
            "   ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED"
            f" ) RETURNING {ORDER_COLUMNS}",
            pending_timeout,
            retry_after,
            limit,
        )
        return await _with_items(conn, rows)


async def unsettled_count(db: asyncpg.Pool) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM orders WHERE status IN ('pending', 'aborting')"
        " OR (status = 'cancelled' AND NOT stock_returned)"
    )

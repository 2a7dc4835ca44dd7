"""The SQL of notifications, and how an order event becomes one."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.db import fetch_page
from services.kit.events import Event
from services.kit.streams import InvalidEntry

Row = dict[str, Any]
COLUMNS = (
    "id, event_id::text AS event_id, event_type, order_id, user_id, message, occurred_at,"
    " processed_at"
)


def message_for(event_type: str, order: Row) -> str:
    if event_type == "order.created":
        count = len(order["items"])
        return (
            f"Order {order['id']} placed: {count} item{'s' if count != 1 else ''},"
            f" total {order['total']}"
        )
    if event_type == "order.cancelled":
        return f"Order {order['id']} cancelled"
    raise InvalidEntry(f"unknown event type {event_type!r}")


async def record_event(db: asyncpg.Pool, event: Event) -> bool:
    """Process one order event: record its notification once. True when recorded now,
    False when this event had been processed already (a redelivery)."""
    try:
        order_id = int(event.aggregate_id)
        message = message_for(event.type, event.payload)
        user_id = event.payload.get("user_id")
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidEntry(f"{type(error).__name__}: {error}") from None
    recorded = await db.fetchval(
        "INSERT INTO notifications (event_id, event_type, order_id, user_id, message,"
        " occurred_at) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING processed_at",
        event.id,
        event.type,
        order_id,
        user_id,
        message,
        event.occurred_at,
    )
    return recorded is not None


async def list_notifications(
    db: asyncpg.Pool, limit: int, offset: int, order_id: int | None
) -> tuple[list[Row], int]:
    source = "notifications WHERE ($1::bigint IS NULL OR order_id = $1)"
    async with db.acquire() as conn:
        return await fetch_page(conn, COLUMNS, source, (order_id,), limit, offset)

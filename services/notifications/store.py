"""The SQL of notifications, and how an order event becomes one."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from prometheus_client import Histogram

from services.kit.db import fetch_page
from services.kit.streams import InvalidEntry

Row = dict[str, Any]
COLUMNS = (
    "id, event_id::text AS event_id, event_type, order_id, user_id, message, occurred_at,"
    " processed_at"
)

DELIVERY = Histogram(
    "notifications_delivery_seconds",
    "From the order event's commit to its notification's.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
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


async def record_event(db: asyncpg.Pool, entry_id: str, fields: dict[str, str]) -> bool:
    """Process one order event: record its notification once. True when recorded now,
    False when this event had been processed already (a redelivery)."""
    try:
        event_id = uuid.UUID(fields["event_id"])
        event_type = fields["type"]
        order_id = int(fields["order_id"])
        occurred_at = datetime.fromisoformat(fields["occurred_at"])
        order = orjson.loads(fields["payload"])
        message = message_for(event_type, order)
        user_id = order.get("user_id")
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise InvalidEntry(f"{type(error).__name__}: {error}") from None
    recorded = await db.fetchval(
        "INSERT INTO notifications (event_id, event_type, order_id, user_id, message,"
        " occurred_at) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING processed_at",
        event_id,
        event_type,
        order_id,
        user_id,
        message,
        occurred_at,
    )
    if recorded is None:
        return False
    DELIVERY.observe(max(0.0, time.time() - occurred_at.timestamp()))
    return True


async def list_notifications(
    db: asyncpg.Pool, limit: int, offset: int, order_id: int | None
) -> tuple[list[Row], int]:
    source = "notifications WHERE ($1::bigint IS NULL OR order_id = $1)"
    async with db.acquire() as conn:
        return await fetch_page(conn, COLUMNS, source, (order_id,), limit, offset)

"""The outbox relay: publishes the events committed with the orders to a Redis stream.

Runs in every worker of every replica (a background loop). One relay publishes at a
time, chosen by a transaction-scoped advisory lock, so the stream gets the events in the
order they were committed; if that worker dies, its transaction ends with its connection
and another relay takes over at its next round. A round takes a batch of unpublished
rows, XADDs them, and marks them published in the same transaction: a crash between the
XADD and the commit publishes them again (at least once; consumers dedupe on event_id),
and never loses one. While Redis is down the rounds fail and are retried with backoff;
orders keep being accepted, their events wait in the table. NOTIFY from the transaction
that wrote an event wakes the relays at once; a slow poll covers a missed notification.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import Counter

from services.kit.background import sleep_unless
from services.kit.db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from services.kit.keys import DB_POOL, REDIS, SETTINGS
from services.kit.redis_client import CONNECTION_ERRORS as REDIS_CONNECTION_ERRORS

from .store import OUTBOX_CHANNEL

log = logging.getLogger("agora.orders.outbox")

RELAY_LOCK = 0x6F726465_72730001  # pg advisory lock key: "orders" + 1
UNAVAILABLE = DB_CONNECTION_ERRORS + REDIS_CONNECTION_ERRORS

PUBLISHED = Counter(
    "orders_events_published_total", "Outbox events published to the stream.", ("service",)
)


async def publish_batch(
    db: asyncpg.Pool, redis: aioredis.Redis, stream: str, *, batch: int, maxlen: int
) -> int:
    """Publish up to `batch` unpublished events; how many it published (0 when another
    relay holds the lock or nothing is waiting)."""
    async with db.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK):
            return 0
        rows = await conn.fetch(
            "SELECT id, event_id, event_type, order_id, payload::text AS payload, created_at"
            " FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
            batch,
        )
        if not rows:
            return 0
        async with redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xadd(
                    stream,
                    {
                        "event_id": str(row["event_id"]),
                        "type": row["event_type"],
                        "order_id": str(row["order_id"]),
                        "occurred_at": row["created_at"].isoformat(),
                        "payload": row["payload"],
                    },
                    maxlen=maxlen,
                    approximate=True,
                )
            await pipe.execute()
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        )
        return len(rows)


async def _listen(dsn: str, wake: asyncio.Event) -> asyncpg.Connection | None:
    """A connection that sets `wake` on every NOTIFY of the outbox channel."""
    try:
        conn = await asyncpg.connect(dsn, timeout=2)
        await conn.add_listener(OUTBOX_CHANNEL, lambda *_: wake.set())
    except (*DB_CONNECTION_ERRORS, asyncpg.PostgresError, TimeoutError) as error:
        log.warning("outbox relay: cannot listen for notifications (%r); polling", error)
        return None
    return conn


async def relay(app: web.Application, stopping: asyncio.Event) -> None:
    """A loop for services.kit.background."""
    settings = app[SETTINGS]
    db, redis = app[DB_POOL], app[REDIS]
    published = PUBLISHED.labels(settings.service_name)
    wake = asyncio.Event()
    listener: asyncpg.Connection | None = None
    backoff = 0.1
    try:
        while not stopping.is_set():
            if listener is None or listener.is_closed():
                listener = await _listen(settings.database_url, wake)
            wake.clear()
            try:
                sent = await publish_batch(
                    db,
                    redis,
                    settings.events_stream,
                    batch=settings.outbox_batch,
                    maxlen=settings.events_stream_maxlen,
                )
            except UNAVAILABLE as error:
                log.warning("outbox relay: %r; retrying in %.1f s", error, backoff)
                await sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            published.inc(sent)
            if sent < settings.outbox_batch:
                await sleep_unless(stopping, settings.outbox_poll_interval, wake)
    finally:
        if listener is not None:
            listener.terminate()  # a LISTEN connection holds nothing to finish

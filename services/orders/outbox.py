"""The outbox relay: publishes the events committed with the orders to a Redis stream.

Every worker of every replica runs the loop, but one publishes at a time: the one whose
own PostgreSQL session holds an advisory lock (leader election by the database). The
others stand by and try the lock every OUTBOX_STANDBY_INTERVAL seconds; when the
leader's process dies, its session ends, the lock is free and one of them takes over.
One publisher also keeps the stream in commit order.

The leader takes a batch of unpublished events, XADDs them, then marks them published. A
crash between the XADD and the mark publishes them again (at least once: consumers
dedupe on event_id) and never loses one. While Redis is down the leader retries with
backoff; orders keep being accepted, their events wait in the table. NOTIFY from the
statement that wrote an event wakes the leader at once; a slow poll covers the rest.
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
from services.kit.keys import REDIS, SETTINGS
from services.kit.redis_client import CONNECTION_ERRORS as REDIS_CONNECTION_ERRORS

from .store import OUTBOX_CHANNEL

log = logging.getLogger("agora.orders.outbox")

RELAY_LOCK = 0x6F726465_72730001  # the leader's advisory lock: "orders" + 1
MAX_BACKOFF = 5.0

PUBLISHED = Counter(
    "orders_events_published_total", "Outbox events published to the stream.", ("service",)
)


async def publish_batch(
    conn: asyncpg.Connection, redis: aioredis.Redis, stream: str, *, batch: int, maxlen: int
) -> int:
    """Publish up to `batch` unpublished events, oldest first; how many it published."""
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


async def relay(app: web.Application, stopping: asyncio.Event) -> None:
    """A loop for services.kit.background: stand by, or lead while holding the lock."""
    settings = app[SETTINGS]
    conn: asyncpg.Connection | None = None
    backoff = 0.1
    try:
        while not stopping.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(settings.database_url, timeout=5)
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                    log.info("outbox relay: leading")
                    await lead(app, conn, stopping)
                else:
                    await sleep_unless(stopping, settings.outbox_standby_interval)
                backoff = 0.1
            except (*DB_CONNECTION_ERRORS, TimeoutError) as error:
                log.warning("outbox relay: database unavailable (%r)", error)
                if conn is not None:
                    conn.terminate()  # a new session, contending for the lock again
                    conn = None
                await sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
    finally:
        if conn is not None:
            conn.terminate()  # ends the session: the lock goes to a standby at once


async def lead(app: web.Application, conn: asyncpg.Connection, stopping: asyncio.Event) -> None:
    """Publish until stopping; a database error ends the leadership (raised)."""
    settings = app[SETTINGS]
    redis = app[REDIS]
    published = PUBLISHED.labels(settings.service_name)
    wake = asyncio.Event()
    await conn.add_listener(OUTBOX_CHANNEL, lambda *_: wake.set())
    backoff = 0.1
    while not stopping.is_set():
        wake.clear()
        try:
            sent = await publish_batch(
                conn,
                redis,
                settings.events_stream,
                batch=settings.outbox_batch,
                maxlen=settings.events_stream_maxlen,
            )
        except REDIS_CONNECTION_ERRORS as error:
            log.warning("outbox relay: redis unavailable (%r); retrying", error)
            await sleep_unless(stopping, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        backoff = 0.1
        published.inc(sent)
        if sent < settings.outbox_batch:
            await sleep_unless(stopping, settings.outbox_poll_interval, wake)

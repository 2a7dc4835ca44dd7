"""The transactional outbox: events written with the change they describe, and the relay
that publishes them to Redis streams.

**Writing.** A service with a database gets the `outbox` table from its own migrations:
a migration file containing the line `-- agora:include outbox` gets the kit's DDL
(services/kit/sql/outbox.sql) in its place (services.kit.migrate). Inside the
transaction that changes its data, it calls

    await outbox.write(conn, stream, "user.created", user_id, payload)

(or inserts into OUTBOX_COLUMNS itself, as part of a bigger statement, followed by
NOTIFY_SQL). The event commits or rolls back with the change: no event for a change that
did not happen, no change without its event.

**Relaying.** `relay_ctx()` in create_app(contexts=...) (the app needs postgres=True,
redis=True and OutboxSettings) runs the relay in every worker of every replica; one leads
at a time: the one whose own PostgreSQL session holds the advisory lock RELAY_LOCK
(advisory locks are per database, and every service has its own). The others stand by and
try the lock every OUTBOX_STANDBY_INTERVAL seconds; when the leader's process dies its
session ends, the lock is free, and a standby takes over. The leader takes a batch of
unpublished events in id order, XADDs each to the stream its row names, then marks them
published. So:
- at least once: a crash between the XADD and the mark publishes the batch again
  (consumers dedupe on event_id); nothing committed is ever skipped;
- in causal order: one publisher, rows in id order, and a row's id is taken when it is
  written, so an event written after another's commit (the same aggregate's next change,
  say) always follows it on its stream; events of concurrent transactions keep no
  particular order between them;
- Redis down is waited out: the leader retries with backoff, the service keeps
  committing, its events wait in the table. A database error (an outage, its session
  killed, a missing table) ends the leadership; the relay reconnects and contends again.
NOTIFY from the writing transaction wakes the leader at once (on commit); a slow poll
(OUTBOX_POLL_INTERVAL) covers a missed notification.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import Counter, Gauge
from pydantic import Field

from .background import background, sleep_unless
from .config import KitSettings
from .db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from .events import encode_payload, stream_fields
from .keys import REDIS, SETTINGS, TRACER
from .redis_client import CONNECTION_ERRORS as REDIS_CONNECTION_ERRORS
from .tracing import StatusCode, Tracer, current_traceparent, publish_span

log = logging.getLogger("agora.outbox")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

TABLE = "outbox"
CHANNEL = "outbox"  # the NOTIFY channel that wakes the relay
NOTIFY_SQL = f"NOTIFY {CHANNEL}"
# What a service inserts, in this order: (stream, event_type, aggregate_id, payload::jsonb,
# traceparent): the last is services.kit.tracing.current_traceparent() (None when off).
OUTBOX_COLUMNS = f"{TABLE} (stream, event_type, aggregate_id, payload, traceparent)"
RELAY_LOCK = int.from_bytes(
    hashlib.blake2b(b"agora-outbox-relay", digest_size=8).digest(), "big", signed=True
)
# What ends a leadership (a new session then contends again, after a backoff): the
# database unreachable, but also its session killed under a query (pg_terminate_backend,
# a failover: AdminShutdownError, a PostgresError) or left unusable (InternalClientError),
# and any SQL error (the table not migrated yet, say): the relay never stops for them.
RELAY_DATABASE_ERRORS = (
    *DB_CONNECTION_ERRORS,
    asyncpg.PostgresError,
    asyncpg.InternalClientError,
    TimeoutError,
)
MAX_BACKOFF = 5.0
STATS_EVERY = 5.0  # seconds between counts of the unpublished rows

PUBLISHED = Counter(
    "outbox_events_published_total",
    "Outbox events published to their stream by this service's relay.",
    ("service", "stream"),
)
UNPUBLISHED = Gauge(
    "outbox_unpublished",
    "Outbox events committed and not yet published (counted by the leading relay).",
    ("service",),
    multiprocess_mode="livemostrecent",
)
LEADING = Gauge(
    "outbox_relay_leading",
    "1 in the worker whose relay holds the lead, 0 in the standbys.",
    ("service",),
    multiprocess_mode="livesum",
)


class OutboxSettings(KitSettings):
    """Settings of a service that publishes events through the outbox."""

    outbox_batch: int = Field(200, ge=1, le=10_000, description="events per XADD round")
    outbox_poll_interval: float = Field(1.0, gt=0, le=60, description="when no NOTIFY wakes it")
    outbox_standby_interval: float = Field(
        2.0, gt=0, le=60, description="how often a standby relay tries to take the lead"
    )
    events_stream_maxlen: int = Field(
        1_000_000, ge=10_000, description="approximate cap on each stream's length"
    )


async def write(
    conn: asyncpg.Connection,
    stream: str,
    event_type: str,
    aggregate_id: object,
    payload: object,
) -> None:
    """Write one event in the caller's transaction (conn must be inside one, or the
    event commits on its own); wakes the relay when that transaction commits. The
    current span's traceparent goes with it: its consumers join this trace."""
    await conn.execute(
        f"INSERT INTO {OUTBOX_COLUMNS} VALUES ($1, $2, $3, $4::jsonb, $5)",
        stream,
        event_type,
        str(aggregate_id),
        encode_payload(payload),
        current_traceparent(),
    )
    await conn.execute(NOTIFY_SQL)


async def unpublished_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE published_at IS NULL")


async def publish_batch(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    *,
    batch: int,
    maxlen: int,
    tracer: Tracer | None = None,
) -> dict[str, int]:
    """Publish up to `batch` unpublished events, oldest first, each to its stream; how
    many it published per stream. With `tracer`, each event written under a sampled span
    gets a publish span (services.kit.tracing.publish_span), ended when the XADDs are."""
    rows = await conn.fetch(
        "SELECT id, event_id, stream, event_type, aggregate_id, payload::text AS payload,"
        f" created_at, traceparent FROM {TABLE} WHERE published_at IS NULL ORDER BY id LIMIT $1",
        batch,
    )
    if not rows:
        return {}
    sent: dict[str, int] = {}
    spans = []
    async with redis.pipeline(transaction=False) as pipe:
        for row in rows:
            traceparent = row["traceparent"]
            if tracer is not None and traceparent:
                span, traceparent = publish_span(
                    tracer, row["stream"], row["event_type"], traceparent
                )
                if span is not None:
                    spans.append(span)
            fields = stream_fields(
                row["event_id"],
                row["event_type"],
                row["aggregate_id"],
                row["created_at"],
                row["payload"],
                traceparent,
            )
            pipe.xadd(row["stream"], fields, maxlen=maxlen, approximate=True)
            sent[row["stream"]] = sent.get(row["stream"], 0) + 1
        try:
            await pipe.execute()
        except BaseException as error:
            for span in spans:
                span.set_status(StatusCode.ERROR, type(error).__name__)
            raise
        finally:
            for span in spans:
                span.end()
    await conn.execute(
        f"UPDATE {TABLE} SET published_at = now() WHERE id = ANY($1::bigint[])",
        [row["id"] for row in rows],
    )
    return sent


class Relay:
    """The relay loop of one worker: stand by, or lead while holding RELAY_LOCK."""

    def __init__(
        self, settings: OutboxSettings, redis: aioredis.Redis, *, tracer: Tracer | None = None
    ) -> None:
        assert settings.database_url is not None
        self.settings = settings
        self.redis = redis
        self.tracer = tracer
        self.service = settings.service_name
        self.leading = False
        self._leading_gauge = LEADING.labels(self.service)
        self._unpublished = UNPUBLISHED.labels(self.service)

    async def run(self, stopping: asyncio.Event) -> None:
        conn: asyncpg.Connection | None = None
        backoff = 0.1
        try:
            while not stopping.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.settings.database_url, timeout=5)
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                        log.info("outbox relay: leading")
                        self._lead_state(True)
                        await self.lead(conn, stopping)
                    else:
                        await sleep_unless(stopping, self.settings.outbox_standby_interval)
                    backoff = 0.1
                except RELAY_DATABASE_ERRORS as error:
                    log.warning("outbox relay: database unavailable (%r)", error)
                    self._lead_state(False)
                    if conn is not None:
                        conn.terminate()  # a new session, contending for the lock again
                        conn = None
                    await sleep_unless(stopping, backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            self._lead_state(False)
            if conn is not None:
                conn.terminate()  # ends the session: the lock goes to a standby at once

    def _lead_state(self, leading: bool) -> None:
        self.leading = leading
        self._leading_gauge.set(1 if leading else 0)

    async def lead(self, conn: asyncpg.Connection, stopping: asyncio.Event) -> None:
        """Publish until stopping; a database error ends the leadership (raised)."""
        settings = self.settings
        wake = asyncio.Event()
        await conn.add_listener(CHANNEL, lambda *_: wake.set())
        # A session that dies while the leader sleeps wakes it too: its next query fails
        # and the leadership ends at once, not a poll interval later.
        conn.add_termination_listener(lambda *_: wake.set())
        loop = asyncio.get_running_loop()
        next_stats = 0.0
        backoff = 0.1
        while not stopping.is_set():
            wake.clear()
            try:
                sent = await publish_batch(
                    conn,
                    self.redis,
                    batch=settings.outbox_batch,
                    maxlen=settings.events_stream_maxlen,
                    tracer=self.tracer,
                )
            except REDIS_CONNECTION_ERRORS as error:
                log.warning("outbox relay: redis unavailable (%r); retrying", error)
                await sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            for stream, count in sent.items():
                PUBLISHED.labels(self.service, stream).inc(count)
            if loop.time() >= next_stats:
                self._unpublished.set(await unpublished_count(conn))
                next_stats = loop.time() + STATS_EVERY
            if sum(sent.values()) < settings.outbox_batch:
                await sleep_unless(stopping, settings.outbox_poll_interval, wake)


def relay_ctx(name: str = "outbox-relay") -> CleanupCtx:
    """The relay as a background loop of the app (see the module's docstring)."""

    async def relay(app: web.Application, stopping: asyncio.Event) -> None:
        settings = app[SETTINGS]
        assert isinstance(settings, OutboxSettings), "the outbox relay needs OutboxSettings"
        await Relay(settings, app[REDIS], tracer=app.get(TRACER)).run(stopping)

    return background(name, relay)

"""Redis streams consumed by a consumer group: delivered at least once, processed once.

Every worker of every replica is one consumer of the group, named after its host and
process. It reads new entries (XREADGROUP ... >), gives each to the service's handler
and acknowledges it (XACK) only after the handler returned. An entry that a consumer
took and never acknowledged (it was SIGKILLed, or its handler failed) stays pending in
the group: every consumer periodically claims (XAUTOCLAIM) entries pending for longer
than `claim_idle` and processes them again. So the handler must be idempotent: keyed on
something in the entry (the notifications service keys its durable record on the event
id) and answering `False` for an entry it had already processed.

Handler errors: `InvalidEntry` means the entry can never be processed (bad payload): it
is copied to `<stream>:dead` with the reason and acknowledged, so it blocks nothing. Any
other exception is taken as transient: the entry stays pending, the consumer backs off
and then retries its own pending entries first. A database or Redis outage (or one of an
upstream the handler calls through the kit's client) is waited out however long it
lasts; an entry that fails `max_failures` times for any other reason (a bug) is
dead-lettered too, rather than blocking its consumer forever. Redis being away
is transient for the loop itself as well: it backs off and reconnects.

Metrics (multiprocess-safe): entries handled by outcome, redeliveries, and the group's
lag (entries not yet delivered) and pending count (delivered, not yet acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import ResponseError

from .background import sleep_unless
from .db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from .http_client import UpstreamTimeout, UpstreamUnavailable
from .redis_client import CONNECTION_ERRORS

# A handler failing with one of these waits for its dependency (the database, Redis, or
# an upstream service it calls, such as search asking posts for a post's text); it is
# never dead-lettered.
UNAVAILABLE = (
    *DB_CONNECTION_ERRORS,
    *CONNECTION_ERRORS,
    TimeoutError,
    UpstreamUnavailable,
    UpstreamTimeout,
)

log = logging.getLogger("agora.streams")

Fields = dict[str, str]
Entry = tuple[str, Fields]
# (entry id, fields) -> True when processed now, False when it had been processed before.
Handler = Callable[[str, Fields], Awaitable[bool]]

EVENTS = Counter(
    "stream_events_total",
    "Stream entries handled by this service's consumers, by outcome.",
    ("service", "stream", "outcome"),
)
REDELIVERIES = Counter(
    "stream_redeliveries_total",
    "Entries handled again: claimed after a consumer left them pending, or retried.",
    ("service", "stream"),
)
LAG = Gauge(
    "stream_consumer_lag",
    "Entries in the stream not yet delivered to the consumer group.",
    ("service", "stream", "group"),
    multiprocess_mode="livemostrecent",
)
PENDING = Gauge(
    "stream_consumer_pending",
    "Entries delivered to the consumer group and not acknowledged yet.",
    ("service", "stream", "group"),
    multiprocess_mode="livemostrecent",
)


class InvalidEntry(Exception):
    """Raised by a handler for an entry that no retry can ever process."""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _decode(fields: dict[bytes, bytes]) -> Fields:
    return {key.decode(): value.decode() for key, value in fields.items()}


def _entries(raw: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> list[Entry]:
    # An entry trimmed from the stream while pending comes back without fields.
    return [(entry_id.decode(), _decode(fields)) for entry_id, fields in raw if fields]


@dataclass
class ConsumerOptions:
    batch: int = 100
    block: float = 1.0  # seconds one XREADGROUP waits for new entries
    claim_idle: float = 30.0  # pending this long: its consumer is taken to be dead
    forget_idle: float = 3600.0  # consumers idle this long with nothing pending are removed
    stats_every: float = 2.0
    max_backoff: float = 5.0
    max_failures: int = 10  # a handler failing this often (not an outage): dead-lettered


class StreamConsumer:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        service: str,
        stream: str,
        group: str,
        handler: Handler,
        name: str | None = None,
        options: ConsumerOptions | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.handler = handler
        self.name = name or consumer_name()
        self.options = options or ConsumerOptions()
        self.last_error: str | None = "not started"
        self._group_ready = False
        self._own_pending_first = True  # after a start or a failure: retry what we hold
        self._next_claim = 0.0
        self._next_stats = 0.0
        self._failures: dict[str, int] = {}
        self._outcomes = {
            outcome: EVENTS.labels(service, stream, outcome)
            for outcome in ("processed", "duplicate", "dead_letter", "failed")
        }
        self._redeliveries = REDELIVERIES.labels(service, stream)
        self._lag = LAG.labels(service, stream, group)
        self._pending = PENDING.labels(service, stream, group)

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; a loop for services.kit.background."""
        backoff = 0.1
        while not stopping.is_set():
            try:
                await self.step()
            except CONNECTION_ERRORS as error:
                self.last_error = f"redis: {type(error).__name__}"
                log.warning("stream %s: redis unavailable (%r)", self.stream, error)
            except HandlerFailed as failure:
                self.last_error = str(failure)
            except ResponseError as error:  # the stream or group was deleted, say
                self.last_error = f"redis: {error}"
                log.warning("stream %s: %s; making the group again", self.stream, error)
                self._group_ready = False
            else:
                self.last_error = None
                backoff = 0.1
                continue
            await sleep_unless(stopping, backoff)
            backoff = min(backoff * 2, self.options.max_backoff)

    async def step(self) -> int:
        """One round: claim stale entries when due, then read new ones. Returns how many
        entries it handled."""
        if not self._group_ready:
            await self.ensure_group()
        handled = 0
        now = time.monotonic()
        if self._own_pending_first:
            handled += await self._handle(await self._read("0", block=None), redelivered=True)
            self._own_pending_first = False
        if now >= self._next_claim:
            handled += await self.claim_stale()
            self._next_claim = now + max(1.0, self.options.claim_idle / 2)
        if now >= self._next_stats:
            await self.observe()
            self._next_stats = now + self.options.stats_every
        handled += await self._handle(
            await self._read(">", block=self.options.block), redelivered=False
        )
        return handled

    async def ensure_group(self) -> None:
        """The group, created from the stream's start: entries added before any consumer
        existed are delivered too."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def _read(self, start: str, *, block: float | None) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group,
            self.name,
            {self.stream: start},
            count=self.options.batch,
            block=None if block is None else int(block * 1000),
        )
        return _entries(reply[0][1]) if reply else []

    async def claim_stale(self) -> int:
        """Take over entries pending longer than claim_idle (their consumer is gone)."""
        handled, cursor = 0, "0-0"
        while True:
            cursor_raw, claimed, *_ = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.name,
                min_idle_time=int(self.options.claim_idle * 1000),
                start_id=cursor,
                count=self.options.batch,
            )
            entries = _entries(claimed)
            if entries:
                log.info("stream %s: claimed %d stale entries", self.stream, len(entries))
            handled += await self._handle(entries, redelivered=True)
            cursor = cursor_raw.decode()
            if cursor == "0-0":
                break
        await self.forget_idle_consumers()
        return handled

    async def forget_idle_consumers(self) -> None:
        """Consumers of dead processes are left in the group by name; remove the ones
        that hold nothing and have not been seen for forget_idle."""
        for consumer in await self.redis.xinfo_consumers(self.stream, self.group):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            if (
                name != self.name
                and consumer["pending"] == 0
                and consumer["idle"] >= self.options.forget_idle * 1000
            ):
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)

    async def observe(self) -> None:
        for group in await self.redis.xinfo_groups(self.stream):
            name = group["name"]
            if (name.decode() if isinstance(name, bytes) else name) == self.group:
                self._pending.set(group["pending"])
                if group.get("lag") is not None:
                    self._lag.set(group["lag"])

    async def _handle(self, entries: list[Entry], *, redelivered: bool) -> int:
        done: list[str] = []
        try:
            for entry_id, fields in entries:
                if redelivered:
                    self._redeliveries.inc()
                try:
                    fresh = await self.handler(entry_id, fields)
                except InvalidEntry as error:
                    log.error("stream %s: entry %s is invalid: %s", self.stream, entry_id, error)
                    await self._dead_letter(entry_id, fields, str(error))
                except Exception as error:
                    self._outcomes["failed"].inc()
                    if self._poisonous(entry_id, error):
                        log.error("stream %s: entry %s keeps failing", self.stream, entry_id)
                        await self._dead_letter(entry_id, fields, f"failed: {error!r}")
                        done.append(entry_id)
                        continue
                    self._own_pending_first = True
                    log.warning(
                        "stream %s: entry %s failed, will retry: %r", self.stream, entry_id, error
                    )
                    raise HandlerFailed(f"handler: {type(error).__name__}") from error
                else:
                    self._failures.pop(entry_id, None)
                    self._outcomes["processed" if fresh else "duplicate"].inc()
                done.append(entry_id)
        finally:
            if done:  # what was handled is acknowledged even when a later entry failed
                await self.redis.xack(self.stream, self.group, *done)
        return len(done)

    def _poisonous(self, entry_id: str, error: Exception) -> bool:
        """An entry whose handler failed max_failures times, not for want of a database
        or Redis (those outages are waited out, however long), would block its consumer
        forever."""
        if isinstance(error, UNAVAILABLE):
            return False
        failures = self._failures[entry_id] = self._failures.get(entry_id, 0) + 1
        if failures < self.options.max_failures:
            return False
        del self._failures[entry_id]
        return True

    async def _dead_letter(self, entry_id: str, fields: Fields, reason: str) -> None:
        await self.redis.xadd(
            f"{self.stream}:dead", {**fields, "entry_id": entry_id, "error": reason}
        )
        self._outcomes["dead_letter"].inc()


class HandlerFailed(Exception):
    """A handler failed transiently; its entry stays pending."""

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

Concurrency (`ConsumerOptions.concurrency` above 1): the consumer holds up to that many
entries at once, each handler in its own task, reading more as handlers finish and
acknowledging each entry (in batches) once its handler returned, for handlers that wait on
the network (the crawler's URL checks). It renews the lease of every entry it holds (an
XCLAIM to itself resets the entry's idle time) every claim_idle / 3, so a handler may run
longer than claim_idle without another consumer taking its entry; when the consumer dies
its leases lapse and its entries are claimed after claim_idle, as above. On stopping it
gives its handlers a moment to finish, then cancels them: their entries stay pending.

Metrics (multiprocess-safe): entries handled by outcome, redeliveries, and the group's
lag (entries not yet delivered) and pending count (delivered, not yet acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
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
    concurrency: int = 1  # entries handled at once (see the module's docstring)
    ack_every: float = 0.05  # with concurrency: how often finished entries are acknowledged
    stop_patience: float = 2.0  # with concurrency: how long running handlers get on stopping


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
        # With concurrency > 1: the entries being handled, the handled ones not yet
        # acknowledged, the last transient failure, and a wake-up when a handler ends.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._handled: list[str] = []
        self._failure: str | None = None
        self._slot_freed: asyncio.Event | None = None
        self._next_lease = 0.0

    @property
    def holding(self) -> int:
        """Entries whose handlers run now (concurrency > 1)."""
        return len(self._running)

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; a loop for services.kit.background."""
        try:
            await self._run(stopping)
        finally:
            if self._running or self._handled:
                await self._stop_handlers()

    async def _run(self, stopping: asyncio.Event) -> None:
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
        if self.options.concurrency > 1:
            return await self._step_concurrently()
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

    async def _read(
        self, start: str, *, block: float | None, count: int | None = None
    ) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group,
            self.name,
            {self.stream: start},
            count=count or self.options.batch,
            block=None if block is None else int(block * 1000),
        )
        return _entries(reply[0][1]) if reply else []

    async def _claim(self, cursor: str, count: int) -> tuple[str, list[Entry]]:
        """One XAUTOCLAIM round: the next cursor and the entries now ours."""
        cursor_raw, claimed, *_ = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.name,
            min_idle_time=int(self.options.claim_idle * 1000),
            start_id=cursor,
            count=count,
        )
        entries = _entries(claimed)
        if entries:
            log.info("stream %s: claimed %d stale entries", self.stream, len(entries))
        return cursor_raw.decode(), entries

    async def claim_stale(self) -> int:
        """Take over entries pending longer than claim_idle (their consumer is gone)."""
        handled, cursor = 0, "0-0"
        while True:
            cursor, entries = await self._claim(cursor, self.options.batch)
            handled += await self._handle(entries, redelivered=True)
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
                try:
                    await self._handle_one(entry_id, fields, redelivered=redelivered)
                except HandlerFailed:
                    self._own_pending_first = True
                    raise
                done.append(entry_id)
        finally:
            if done:  # what was handled is acknowledged even when a later entry failed
                await self.redis.xack(self.stream, self.group, *done)
        return len(done)

    async def _handle_one(self, entry_id: str, fields: Fields, *, redelivered: bool) -> None:
        """Give one entry to the handler. Returning means it may be acknowledged
        (processed, a duplicate, or dead-lettered); HandlerFailed that it stays pending."""
        if redelivered:
            self._redeliveries.inc()
        try:
            fresh = await self.handler(entry_id, fields)
        except InvalidEntry as error:
            log.error("stream %s: entry %s is invalid: %s", self.stream, entry_id, error)
            await self._dead_letter(entry_id, fields, str(error))
            return
        except Exception as error:
            self._outcomes["failed"].inc()
            if self._poisonous(entry_id, error):
                log.error("stream %s: entry %s keeps failing", self.stream, entry_id)
                await self._dead_letter(entry_id, fields, f"failed: {error!r}")
                return
            log.warning("stream %s: entry %s failed, will retry: %r", self.stream, entry_id, error)
            raise HandlerFailed(f"handler: {type(error).__name__}") from error
        self._failures.pop(entry_id, None)
        self._outcomes["processed" if fresh else "duplicate"].inc()

    # ---------------------------------------------------------------- concurrently

    async def _step_concurrently(self) -> int:
        """One round with concurrency: acknowledge what finished, renew the leases of
        what runs, start entries (own pending ones after a failure, stale ones of dead
        consumers, new ones) while there are free slots, or wait for one."""
        if self._slot_freed is None:
            self._slot_freed = asyncio.Event()
        await self._acknowledge()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            self._own_pending_first = True
            raise HandlerFailed(failure)  # run() backs off, then retries them first
        now = time.monotonic()
        started = 0
        if now >= self._next_lease and self._running:
            await self.renew_leases()
            self._next_lease = now + self.options.claim_idle / 3
        if self._own_pending_first:
            started += await self._start_own_pending()
        if now >= self._next_claim:
            # Stale entries come before new ones: while slots are too few to take them
            # all, claim again next round, not a claim period later.
            cursor, more = "0-0", True
            while self._free() > 0:
                cursor, entries = await self._claim(cursor, min(self.options.batch, self._free()))
                started += self._start(entries, redelivered=True)
                if cursor == "0-0":
                    more = False
                    break
            if not more:
                await self.forget_idle_consumers()
            pause = 0.0 if more else max(1.0, self.options.claim_idle / 2)
            self._next_claim = now + pause
        if now >= self._next_stats:
            await self.observe()
            self._next_stats = now + self.options.stats_every
        free = self._free()
        if free > 0:
            # While handlers run, read briefly: finished entries wait for the next round
            # to be acknowledged and their slots to be filled again.
            block = min(self.options.block, self.options.ack_every) if self._running else None
            entries = await self._read(
                ">", block=block if block is not None else self.options.block, count=free
            )
            started += self._start(entries, redelivered=False)
        else:
            # Woken by a handler's end, or in time to renew the leases (claim_idle may be
            # shorter than block).
            self._slot_freed.clear()
            wait = min(self.options.block, max(0.0, self._next_lease - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._slot_freed.wait()
        return started

    def _free(self) -> int:
        return self.options.concurrency - len(self._running)

    async def _start_own_pending(self) -> int:
        """Entries this consumer holds but runs no handler for (one failed): again."""
        started, cursor = 0, "0"
        while self._free() > 0:
            entries = await self._read(cursor, block=None)
            if not entries:
                self._own_pending_first = False
                break
            cursor = entries[-1][0]
            started += self._start(entries, redelivered=True)
        return started

    def _start(self, entries: list[Entry], *, redelivered: bool) -> int:
        """A handler task for each entry not running yet, while slots are free."""
        started = 0
        for entry_id, fields in entries:
            if entry_id in self._running:
                continue  # ours already (own pending re-read, or our own lease lapsed)
            if self._free() <= 0:
                break
            self._running[entry_id] = asyncio.create_task(
                self._run_one(entry_id, fields, redelivered), name=f"{self.stream} {entry_id}"
            )
            started += 1
        return started

    async def _run_one(self, entry_id: str, fields: Fields, redelivered: bool) -> None:
        try:
            await self._handle_one(entry_id, fields, redelivered=redelivered)
        except HandlerFailed as failure:
            self._failure = str(failure)  # the entry stays pending
        else:
            self._handled.append(entry_id)
        finally:
            self._running.pop(entry_id, None)
            if self._slot_freed is not None:
                self._slot_freed.set()

    async def _acknowledge(self) -> None:
        if not self._handled:
            return
        done, self._handled = self._handled, []
        try:
            await self.redis.xack(self.stream, self.group, *done)
        except BaseException:
            self._handled.extend(done)  # acknowledged next time
            raise

    async def renew_leases(self) -> None:
        """Reset the idle time of every entry being handled: claimed by nobody else."""
        await self.redis.xclaim(
            self.stream,
            self.group,
            self.name,
            min_idle_time=0,
            message_ids=list(self._running),
            justid=True,
        )

    async def _stop_handlers(self) -> None:
        """Let running handlers finish for a moment, cancel the rest (their entries stay
        pending, for another consumer), acknowledge what finished."""
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=self.options.stop_patience)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            await self._acknowledge()
        except CONNECTION_ERRORS as error:
            log.warning("stream %s: could not acknowledge on stopping (%r)", self.stream, error)

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

"""One worker's counter clients, the total they are shown, and the loops that keep it.

- announce: tells Redis this worker's count when it changes (at most every
  COUNTER_MIN_INTERVAL) and refreshes it every PRESENCE_TTL / 4.
- listen: the pub/sub channel brings every other worker's changes.
- push: sends the total to every local client when it changes, coalesced to at most one
  message per COUNTER_MIN_INTERVAL, and at least every COUNTER_PERIOD seconds. Each
  client has a bounded queue (services.kit.websocket), so a slow one is cut off instead
  of delaying the others.

The total is this worker's own count (always current) plus the others' as Redis last
said. While Redis is unreachable it is this worker's count alone, marked "partial";
when Redis answers again, the total comes back by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from aiohttp import web
from prometheus_client import Histogram

from services.kit.background import sleep_unless
from services.kit.keys import REDIS
from services.kit.redis_client import CONNECTION_ERRORS, listen
from services.kit.websocket import Connection

from .keys import HUB, PRESENCE
from .presence import Entries

log = logging.getLogger("agora.realtime")

BROADCAST_SECONDS = Histogram(
    "realtime_broadcast_seconds",
    "From a change of the count reaching this worker to its message queued for every client.",
    ("service",),
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class Hub:
    def __init__(self, service: str, worker_id: str, *, min_interval: float, period: float) -> None:
        self.worker_id = worker_id
        self.replica = worker_id.split("/", 1)[0]
        self.min_interval = min_interval
        self.period = period
        self.clients: dict[Connection, str] = {}  # each client: the last message it got
        self.others: dict[str, int] = {}  # the other workers' counts, as Redis last said
        self.sequence = -1  # of `others`; -1: accept whatever comes next
        self.connected = False  # Redis answered the last time it was asked
        self.local_changed = asyncio.Event()  # for announce
        self.changed = asyncio.Event()  # for push
        self._changed_at: float | None = None
        self._last_pushed: dict[str, object] | None = None
        self._broadcast_seconds = BROADCAST_SECONDS.labels(service)

    # ---------------------------------------------------------------- state

    def snapshot(self) -> dict[str, object]:
        local = len(self.clients)
        if not self.connected:
            return {"connections": local, "replicas": 1, "workers": 1, "partial": True}
        replicas = {worker.split("/", 1)[0] for worker in self.others} | {self.replica}
        return {
            "connections": local + sum(self.others.values()),
            "replicas": len(replicas),
            "workers": len(self.others) + 1,
            "partial": False,
        }

    def _note_change(self) -> None:
        if self.snapshot() != self._last_pushed:
            if self._changed_at is None:
                self._changed_at = time.perf_counter()
            self.changed.set()

    def join(self, client: Connection) -> None:
        self.clients[client] = ""
        self.local_changed.set()
        self._note_change()

    def leave(self, client: Connection) -> None:
        self.clients.pop(client, None)
        self.local_changed.set()
        self._note_change()

    def update(self, entries: Entries) -> None:
        """A list of entries from Redis: applied unless a newer one was seen already."""
        if entries.sequence < self.sequence:
            return
        self.sequence = entries.sequence
        self.others = {w: n for w, n in entries.counts.items() if w != self.worker_id}
        self.connected = True
        self._note_change()

    def lost(self, error: BaseException) -> None:
        if self.connected:
            log.warning("Redis unreachable, counting this worker's clients only: %r", error)
        self.connected = False
        self.sequence = -1  # Redis may come back empty, its sequence restarted
        self._note_change()

    # ---------------------------------------------------------------- sending

    def broadcast(self, *, again: bool = False) -> int:
        """Queue the current total for every client that has not got it yet (`again`:
        for every client); how many got it."""
        snapshot = self.snapshot()
        text = orjson.dumps(snapshot).decode()
        sent = 0
        for client, last in list(self.clients.items()):
            if again or last != text:
                client.push(text)
                self.clients[client] = text
                sent += 1
        self._last_pushed = snapshot
        if self._changed_at is not None:
            self._broadcast_seconds.observe(time.perf_counter() - self._changed_at)
            self._changed_at = None
        return sent

    def greet(self, client: Connection) -> None:
        text = orjson.dumps(self.snapshot()).decode()
        client.push(text)
        self.clients[client] = text


# ---------------------------------------------------------------- the loops


async def announce(app: web.Application, stopping: asyncio.Event) -> None:
    hub, presence = app[HUB], app[PRESENCE]
    while not await sleep_unless(stopping, presence.refresh_seconds, hub.local_changed):
        hub.local_changed.clear()
        try:
            hub.update(await presence.announce(len(hub.clients)))
        except CONNECTION_ERRORS as error:
            hub.lost(error)
        await sleep_unless(stopping, hub.min_interval)  # coalesce a burst of changes
    with contextlib.suppress(*CONNECTION_ERRORS, TimeoutError):
        async with asyncio.timeout(1.0):
            await presence.withdraw()  # the others' clients see the drop at once


async def subscribe(app: web.Application, stopping: asyncio.Event) -> None:
    hub, presence = app[HUB], app[PRESENCE]

    def on_message(data: bytes) -> None:
        try:
            hub.update(Entries.from_message(data))
        except (ValueError, IndexError, TypeError):
            log.warning("ignored a malformed presence message: %r", data[:200])

    await listen(
        app[REDIS],
        presence.channel,
        on_message,
        stopping,
        on_subscribed=hub.local_changed.set,  # read again what was missed meanwhile
        on_lost=hub.lost,
    )


async def push(app: web.Application, stopping: asyncio.Event) -> None:
    hub = app[HUB]
    while not await sleep_unless(stopping, hub.period, hub.changed):
        changed = hub.changed.is_set()
        hub.changed.clear()
        hub.broadcast(again=not changed)  # a quiet period: everyone hears the count again
        await sleep_unless(stopping, hub.min_interval)

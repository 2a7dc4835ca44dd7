"""WebSocket routes: limits, the Origin check, draining, metrics and bounded sending.

A route declared with `Api.websocket` gets its handler called with an open
`Connection` once the upgrade succeeded; before the upgrade the kit refuses, in the
error shape, what must not become a socket: a worker that is draining or already holds
WS_MAX_CONNECTIONS sockets (503), a browser page from another origin (403), a request
that is not an upgrade (400). What every socket gets, chosen on purpose:

- heartbeat: a ping after WS_HEARTBEAT seconds without traffic, the socket closed when
  no pong comes within half of that. Load balancers drop idle connections silently
  (often after 60 s); the pings keep them open and find dead peers.
- no compression: the messages are small JSON; permessage-deflate would cost CPU per
  message and zlib state per socket (BENCHMARKS.md, realtime).
- a bounded send queue (`Connection.push`): a broadcast never waits for one client; a
  client that lets WS_SEND_QUEUE messages pile up is not reading and is closed with
  4008 (SLOW_CLIENT), so it cannot slow the others.
- on shutdown (SIGTERM, after the drain) every open socket is closed with 1001 (going
  away), so clients reconnect to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from prometheus_client import Counter, Gauge

from .errors import ApiError
from .health import Readiness
from .keys import WEBSOCKETS

log = logging.getLogger("agora.websocket")

GOING_AWAY = int(WSCloseCode.GOING_AWAY)  # 1001
MESSAGE_TOO_BIG = int(WSCloseCode.MESSAGE_TOO_BIG)  # 1009
SLOW_CLIENT = 4008  # ours: the client did not read its messages
CUT_OFF_GRACE = 1.0  # seconds a slow client gets to take its close frame

WS_OPEN = Gauge(
    "websocket_connections",
    "WebSocket connections open now.",
    ("service", "route"),
    multiprocess_mode="livesum",
)
WS_MESSAGES = Counter(
    "websocket_messages",
    "WebSocket messages received (in) and sent (out).",
    ("service", "route", "direction"),
)
WS_SLOW_CLIENTS = Counter(
    "websocket_slow_client_disconnects",
    "WebSockets closed because the client did not read (code 4008).",
    ("service", "route"),
)
WS_REFUSED = Counter(
    "websocket_upgrades_refused",
    "WebSocket upgrades refused before they opened, by reason.",
    ("service", "route", "reason"),
)

SocketHandler = Callable[[web.Request, "Connection"], Awaitable[None]]


class RouteStats:
    """Plain counters of one route, moved into prometheus by flush() (see metrics.py:
    a multiprocess update per message would cost more than the message)."""

    __slots__ = ("children", "messages_in", "messages_out", "open", "slow")

    def __init__(self, service: str, route: str) -> None:
        self.open = self.messages_in = self.messages_out = self.slow = 0
        self.children = (
            WS_OPEN.labels(service, route),
            WS_MESSAGES.labels(service, route, "in"),
            WS_MESSAGES.labels(service, route, "out"),
            WS_SLOW_CLIENTS.labels(service, route),
        )

    def flush(self) -> None:
        gauge, received, sent, slow = self.children
        gauge.set(self.open)
        received.inc(self.messages_in)
        sent.inc(self.messages_out)
        slow.inc(self.slow)
        self.messages_in = self.messages_out = self.slow = 0


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """Browsers send Origin; a page may open sockets to its own host only, or to the
    origins listed in WS_ALLOWED_ORIGINS ("*": any). Clients that are not browsers send
    no Origin and are not concerned (the check protects a user's browser session)."""
    if origin is None or "*" in allowed:
        return True
    origin = origin.rstrip("/").lower()
    if origin in allowed:
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        target = urlsplit(f"//{host.lower()}")
        return (parts.hostname, parts.port or default_port) == (
            target.hostname,
            target.port or default_port,
        )
    except ValueError:  # a malformed port
        return False


def parse_origins(text: str) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/").lower() for o in text.split(",") if o.strip())


class Connection:
    """One open WebSocket as a handler sees it: receive by iterating, `send_*` to answer
    in line, `push()` to queue a message without waiting (broadcasts)."""

    __slots__ = ("_pending", "_sender", "closing", "request", "sockets", "stats", "ws")

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, stats: RouteStats, sockets: Sockets
    ) -> None:
        self.ws = ws
        self.request = request
        self.stats = stats
        self.sockets = sockets
        self.closing = False
        self._pending: deque[str | bytes] = deque()
        self._sender: asyncio.Task[None] | None = None

    async def __aiter__(self) -> AsyncIterator[WSMessage]:
        """Text and binary messages until the socket closes (an oversized one closes it
        with 1009; pings, pongs and the close handshake are aiohttp's)."""
        async for message in self.ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                self.stats.messages_in += 1
                yield message

    async def send_str(self, text: str) -> None:
        await self.ws.send_str(text)
        self.stats.messages_out += 1

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)
        self.stats.messages_out += 1

    def push(self, message: str | bytes) -> None:
        """Queue a message, in order after the others, and return at once. When the
        queue is full the client is not reading: it is closed with SLOW_CLIENT."""
        if self.closing:
            return
        if len(self._pending) >= self.sockets.send_queue:
            self.cut_off()
            return
        self._pending.append(message)
        if self._sender is None:  # a task only while something waits: idle sockets cost none
            self._sender = asyncio.create_task(self._send_pending())

    async def _send_pending(self) -> None:
        try:
            while self._pending and not self.ws.closed:
                message = self._pending.popleft()
                if isinstance(message, str):
                    await self.send_str(message)
                else:
                    await self.send_bytes(message)
        except (ConnectionError, RuntimeError):
            pass  # the socket went away meanwhile; its handler sees it close
        finally:
            self._sender = None

    def cut_off(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.stats.slow += 1
        self._pending.clear()
        self.sockets.spawn(self._cut_off())

    async def _cut_off(self) -> None:
        # The sender is left alone: cancelling it would cancel the drain future it
        # shares with close(). Aborting the transport below ends it.
        try:
            async with asyncio.timeout(CUT_OFF_GRACE):
                await self.ws.close(code=SLOW_CLIENT, message=b"too slow: messages were not read")
        except (TimeoutError, ConnectionError):
            pass
        transport = self.request.transport
        if transport is not None:
            transport.abort()  # its buffers are full: do not wait for them to drain

    async def close(self, code: int, message: bytes = b"") -> None:
        self.closing = True
        with contextlib.suppress(ConnectionError):
            await self.ws.close(code=code, message=message)


class Sockets:
    """The WebSockets one worker holds, across its WebSocket routes."""

    def __init__(
        self,
        service: str,
        readiness: Readiness,
        *,
        max_connections: int,
        allowed_origins: frozenset[str],
        max_message_bytes: int,
        heartbeat: float,
        send_queue: int,
        close_timeout: float,
    ) -> None:
        self.service = service
        self.readiness = readiness
        self.max_connections = max_connections
        self.allowed_origins = allowed_origins
        self.max_message_bytes = max_message_bytes
        self.heartbeat = heartbeat
        self.send_queue = send_queue
        self.close_timeout = close_timeout
        self.open: set[Connection] = set()
        self.routes: dict[str, RouteStats] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, template: str) -> RouteStats:
        if template not in self.routes:
            self.routes[template] = RouteStats(self.service, template)
        return self.routes[template]

    def spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def refuse(self, template: str, reason: str, error: ApiError) -> ApiError:
        WS_REFUSED.labels(self.service, template, reason).inc()
        return error

    async def open_socket(self, request: web.Request, template: str) -> Connection:
        if self.readiness.draining:
            raise self.refuse(
                template,
                "draining",
                ApiError(
                    503,
                    "This replica is shutting down; connect again",
                    headers={"Retry-After": "1"},
                ),
            )
        if len(self.open) >= self.max_connections:
            raise self.refuse(
                template,
                "limit",
                ApiError(
                    503,
                    f"This worker holds {self.max_connections} WebSockets, its limit; try again",
                    headers={"Retry-After": "1"},
                ),
            )
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request.host, self.allowed_origins):
            raise self.refuse(
                template, "origin", ApiError(403, f"Origin {origin[:200]} is not allowed")
            )
        ws = web.WebSocketResponse(
            heartbeat=self.heartbeat,
            max_msg_size=self.max_message_bytes + 1,  # aiohttp's bound is exclusive
            compress=False,
            timeout=self.close_timeout,
        )
        if not ws.can_prepare(request):
            raise ApiError(400, "This is a WebSocket: connect with GET and Upgrade: websocket")
        await ws.prepare(request)
        connection = Connection(ws, request, self.route(template), self)
        self.open.add(connection)
        connection.stats.open += 1
        return connection

    def release(self, connection: Connection) -> None:
        if connection in self.open:
            self.open.discard(connection)
            connection.stats.open -= 1

    async def close_all(self, app: web.Application) -> None:
        """on_shutdown: after the drain, with the listener closed. 1001 tells clients to
        reconnect: they reach another replica."""
        if not self.open:
            return
        log.info("closing %d WebSockets with 1001 (going away)", len(self.open))
        await asyncio.gather(
            *(c.close(GOING_AWAY, b"server shutting down") for c in list(self.open)),
            return_exceptions=True,
        )

    def flush(self) -> None:
        for stats in self.routes.values():
            stats.flush()


def socket_handler(template: str, handler: SocketHandler) -> web.Handler:
    """The aiohttp handler of a WebSocket route: upgrade, run `handler`, close."""

    async def upgrade_then_handle(request: web.Request) -> web.StreamResponse:
        sockets = request.app[WEBSOCKETS]
        connection = await sockets.open_socket(request, template)
        try:
            await handler(request, connection)
        finally:
            sockets.release(connection)
            if not connection.ws.closed:
                await connection.close(int(WSCloseCode.OK))
        return connection.ws

    upgrade_then_handle.__name__ = handler.__name__
    return upgrade_then_handle

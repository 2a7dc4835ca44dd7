"""A command-line client of realtime's WebSockets (aiohttp's client).

    python -m services.realtime.client count http://127.0.0.1:8080          # follow the count
    python -m services.realtime.client count http://127.0.0.1:8080 --once   # print it, exit
    python -m services.realtime.client echo http://127.0.0.1:8080 hello world
    echo hi | python -m services.realtime.client echo http://127.0.0.1:8080  # lines of stdin

URL is the ingress (http/https; ws/wss work too); the paths /ws/counter and /ws/echo are
added. Sockets ping every 20 s, so a dead connection is noticed. When the server closes
with 1001 (a replica going away) or the connection drops, the client connects again at
once and then with a backoff doubling up to 10 s; `echo` sends again what was not
answered yet, so every message comes back exactly once, in order. Exit status: 0 done,
1 the server refused (or closed with 1009: a message too big) or could not be
reached within --timeout, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

HEARTBEAT = 20.0
MAX_BACKOFF = 10.0
GOING_AWAY = 1001
MESSAGE_TOO_BIG = 1009


class Refused(Exception):
    """The server answered the upgrade with an error (403, 503, ...)."""


def socket_url(base: str, path: str) -> str:
    url = URL(base)
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
    if scheme not in ("ws", "wss") or not url.host:
        raise SystemExit(f"not an http(s) or ws(s) URL: {base}")
    return str(url.with_scheme(scheme).with_path(url.path.rstrip("/") + path))


class Reconnecting:
    """Connects, and connects again after a drop, for at most `timeout` seconds without
    an open socket."""

    def __init__(self, session: aiohttp.ClientSession, url: str, timeout: float) -> None:
        self.session = session
        self.url = url
        self.timeout = timeout
        self.backoff = 0.25

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.timeout
        while True:
            try:
                ws = await self.session.ws_connect(
                    self.url, heartbeat=HEARTBEAT, timeout=aiohttp.ClientWSTimeout(ws_close=5)
                )
                break
            except aiohttp.WSServerHandshakeError as error:
                if error.status < 500:
                    raise Refused(f"{self.url}: {error.status} {error.message}") from None
                reason = f"{error.status} {error.message}"  # draining or full: try again
            except (aiohttp.ClientError, OSError) as error:
                reason = str(error) or type(error).__name__
            if loop.time() + self.backoff > give_up:
                raise Refused(f"{self.url}: no connection within {self.timeout:.0f} s: {reason}")
            await asyncio.sleep(self.backoff * (0.5 + random.random()))
            self.backoff = min(self.backoff * 2, MAX_BACKOFF)
        try:
            yield ws
        finally:
            await ws.close()
        # After a 1001 the next replica is ready now: try it at once.
        self.backoff = 0.05 if ws.close_code == GOING_AWAY else 0.25


async def follow_count(url: str, *, once: bool, patience: float) -> int:
    async with aiohttp.ClientSession() as session:
        sockets = Reconnecting(session, socket_url(url, "/ws/counter"), patience)
        last = None
        while True:
            async with sockets.connect() as ws:
                async for message in ws:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    online = json.loads(message.data)
                    if once:
                        print(online["connections"], flush=True)
                        return 0
                    if online != last:
                        print(json.dumps(online), flush=True)
                        last = online


async def echo(url: str, messages: Sequence[str], *, patience: float) -> int:
    """Send each message and print its echo; resend what was unanswered after a drop."""
    pending = list(messages)
    async with aiohttp.ClientSession() as session:
        sockets = Reconnecting(session, socket_url(url, "/ws/echo"), patience)
        while pending:
            async with sockets.connect() as ws:
                for text in pending:
                    await ws.send_str(text)
                async for message in ws:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        print(message.data, flush=True)
                        pending.pop(0)
                        if not pending:
                            break
                if ws.close_code == MESSAGE_TOO_BIG:
                    raise Refused(f"a message is over the server's limit: {pending[0][:40]!r}...")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.realtime.client",
        description="Follow realtime's live count, or echo messages through it.",
    )
    parser.add_argument("command", choices=["count", "echo"])
    parser.add_argument("url", help="the ingress, e.g. http://127.0.0.1:8080")
    parser.add_argument("messages", nargs="*", help="echo: the messages (default: stdin lines)")
    parser.add_argument("--once", action="store_true", help="count: print the count and exit")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="give up after this long without a socket"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "count":
            return asyncio.run(follow_count(args.url, once=args.once, patience=args.timeout))
        messages = args.messages or [line.rstrip("\n") for line in sys.stdin]
        return asyncio.run(echo(args.url, messages, patience=args.timeout))
    except Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

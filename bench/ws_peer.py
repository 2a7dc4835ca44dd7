"""The peer of bench/realtime.py: a bare echo server made with the `websockets` library
(its asyncio implementation, on uvloop like the services), nothing else. It answers
/healthz, /readyz and /metrics over plain HTTP so devstack can run it as a service;
settings as realtime's: no compression, 64 KiB messages, a ping after 20 s."""

from __future__ import annotations

import asyncio
import os
import signal
from http import HTTPStatus

import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

PROBES = ("/healthz", "/readyz", "/metrics")


async def echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


def probes(connection: ServerConnection, request: Request) -> Response | None:
    if request.path in PROBES:
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None  # everything else: the WebSocket handshake


async def main() -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        echo,
        os.environ.get("BIND_HOST", "127.0.0.1"),
        int(os.environ["PORT"]),
        process_request=probes,
        compression=None,
        max_size=64 * 1024,
        ping_interval=20,
        max_queue=16,
    ):
        await stop


if __name__ == "__main__":
    uvloop.run(main())

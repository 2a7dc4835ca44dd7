"""realtime's routes: the two WebSockets, the count as JSON, and the landing page."""

from __future__ import annotations

from pathlib import Path

from aiohttp import WSMsgType, web

from services.kit.api import Api, json_response
from services.kit.redis_client import CONNECTION_ERRORS
from services.kit.websocket import Connection

from .keys import HUB, PRESENCE
from .models import OnlineOut

api = Api(
    "realtime",
    title="Agora realtime",
    description=(
        "WebSockets: an echo, and a live count of the clients connected to every replica."
        " Close codes: 1001 the replica is shutting down (connect again), 1009 a message"
        " over WS_MAX_MESSAGE_BYTES, 4008 the client did not read its messages."
    ),
)
PAGE = (Path(__file__).parent / "page.html").read_bytes()


@api.websocket(
    "/ws/echo",
    summary="WebSocket echo",
    description=(
        "Every text or binary message comes back unchanged, in order. A message over"
        " WS_MAX_MESSAGE_BYTES (64 KiB by default) closes the socket with 1009."
    ),
)
async def ws_echo(request: web.Request, connection: Connection) -> None:
    async for message in connection:
        if message.type is WSMsgType.TEXT:
            await connection.send_str(message.data)
        else:
            await connection.send_bytes(message.data)


@api.websocket(
    "/ws/counter",
    summary="Live count of connected clients",
    description=(
        'Sends {"connections": N, "replicas": R, "workers": W, "partial": false} right'
        " after the upgrade, whenever N changes (at most one message per"
        " COUNTER_MIN_INTERVAL) and at least every COUNTER_PERIOD seconds. N counts the"
        " counter connections of every replica; partial is true while Redis is"
        " unreachable (N is then this worker's own). Messages from the client are ignored."
    ),
)
async def ws_counter(request: web.Request, connection: Connection) -> None:
    hub = request.app[HUB]
    hub.join(connection)
    try:
        hub.greet(connection)
        async for _message in connection:
            pass  # the client has nothing to say; reading keeps pings and close working
    finally:
        hub.leave(connection)


@api.get(
    "/api/v1/realtime/online",
    summary="The count of connected clients, as the counter WebSocket sends it",
    response=OnlineOut,
)
async def online(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    try:
        hub.update(await request.app[PRESENCE].read())
    except CONNECTION_ERRORS as error:
        hub.lost(error)
    return json_response(hub.snapshot())


@api.get("/", summary="The landing page: the live count and an echo box (HTML)")
async def landing_page(request: web.Request) -> web.Response:
    return web.Response(
        body=PAGE, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )

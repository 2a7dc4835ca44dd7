"""The kit's WebSocket routes: what is refused before the upgrade (in the error shape),
the close codes, the bounded send queue and the OpenAPI entry."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from services.kit import app as kit
from services.kit.api import Api
from services.kit.keys import READINESS, WEBSOCKETS
from services.kit.openapi import build_openapi
from services.kit.websocket import SLOW_CLIENT, Connection, origin_allowed, parse_origins
from tests.unit.conftest import settings_for

api = Api("wskit", title="WebSocket kit test")
RECEIVED: list[str] = []


@api.websocket("/ws/talk", summary="Echo, and remember what came", description="Messages.")
async def talk(request: web.Request, connection: Connection) -> None:
    async for message in connection:
        RECEIVED.append(message.data)
        await connection.send_str(message.data)


async def make_client(aiohttp_client, **overrides):
    return await aiohttp_client(kit.create_app(settings_for("wskit", **overrides), api))


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        (None, "example.org", "", True),  # not a browser
        ("http://example.org", "example.org", "", True),
        ("http://example.org:8080", "example.org:8080", "", True),
        ("https://example.org", "example.org:443", "", True),
        ("http://example.org", "example.org:8080", "", False),  # another port
        ("http://evil.test", "example.org", "", False),
        ("http://evil.test", "example.org", "http://evil.test", True),
        ("http://EVIL.test/", "example.org", "http://evil.test", True),
        ("http://other.test", "example.org", "http://evil.test, *", True),
        ("null", "example.org", "", False),  # a sandboxed page
        ("http://example.org", None, "", False),
        ("http://example.org", "example.org:x", "", False),
    ],
)
def test_origin_check(origin, host, allowed, expected):
    assert origin_allowed(origin, host, parse_origins(allowed)) is expected


async def test_messages_come_back_and_are_counted(aiohttp_client):
    client = await make_client(aiohttp_client)
    async with client.ws_connect("/ws/talk") as ws:
        await ws.send_str("one")
        assert (await ws.receive_str(timeout=5)) == "one"
    stats = client.app[WEBSOCKETS].routes["/ws/talk"]
    assert (stats.messages_in, stats.messages_out, stats.open) == (1, 1, 0)


async def test_a_plain_get_is_400_in_shape(aiohttp_client):
    client = await make_client(aiohttp_client)
    resp = await client.get("/ws/talk")
    assert resp.status == 400
    assert (await resp.json())["code"] == "bad_request"


async def test_over_the_connection_limit_is_503_in_shape(aiohttp_client):
    client = await make_client(aiohttp_client, ws_max_connections=1)
    async with client.ws_connect("/ws/talk"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws/talk")
        assert refused.value.status == 503
        resp = await client.get(
            "/ws/talk",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await resp.json())["code"] == "unavailable"
    # the first one closed: room again
    async with client.ws_connect("/ws/talk") as ws:
        await ws.send_str("again")
        assert (await ws.receive_str(timeout=5)) == "again"


async def test_a_page_from_another_origin_is_403(aiohttp_client):
    client = await make_client(aiohttp_client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/talk", origin="http://evil.test")
    assert refused.value.status == 403
    host = f"{client.host}:{client.port}"
    async with client.ws_connect("/ws/talk", origin=f"http://{host}") as ws:
        await ws.send_str("same host")
        assert (await ws.receive_str(timeout=5)) == "same host"


async def test_listed_origins_are_allowed(aiohttp_client):
    client = await make_client(aiohttp_client, ws_allowed_origins="http://app.test")
    async with client.ws_connect("/ws/talk", origin="http://app.test") as ws:
        await ws.send_str("listed")
        assert (await ws.receive_str(timeout=5)) == "listed"


async def test_draining_refuses_upgrades_with_503(aiohttp_client):
    client = await make_client(aiohttp_client)
    client.app[READINESS].draining = True
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/talk")
    assert refused.value.status == 503


async def test_shutdown_closes_open_sockets_with_1001(aiohttp_client):
    client = await make_client(aiohttp_client)
    ws = await client.ws_connect("/ws/talk")
    await ws.send_str("hello")
    assert (await ws.receive_str(timeout=5)) == "hello"
    closing = asyncio.create_task(client.server.close())  # runs on_shutdown
    message = await ws.receive(timeout=5)
    assert message.type is WSMsgType.CLOSE
    assert ws.close_code == 1001 or message.data == 1001
    await ws.close()
    await closing


async def test_a_client_that_does_not_read_is_cut_off_and_others_keep_receiving(aiohttp_client):
    client = await make_client(aiohttp_client, ws_send_queue=4)
    sockets = client.app[WEBSOCKETS]
    slow = await client.ws_connect("/ws/talk")  # never reads
    # On loopback the kernel would buffer tens of MiB for it; keep that small.
    slow.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    fast = await client.ws_connect("/ws/talk")
    await fast.send_str("who")
    assert (await fast.receive_str(timeout=5)) == "who"
    connections = list(sockets.open)
    assert len(connections) == 2
    big = "x" * 256 * 1024
    rounds = 100  # 25 MiB: far more than the buffers of the slow socket hold
    got = 0

    async def read_fast() -> None:
        nonlocal got
        while got < rounds:
            message = await fast.receive(timeout=10)
            assert message.type is WSMsgType.TEXT, message
            got += 1

    reader = asyncio.create_task(read_fast())
    for _ in range(rounds):
        for connection in connections:
            connection.push(big)
        await asyncio.sleep(0.005)  # a broadcast now and then, as the hub sends them
    await asyncio.wait_for(reader, 30)
    assert got == rounds
    stats = sockets.routes["/ws/talk"]
    assert stats.slow == 1
    for _ in range(100):
        if len(sockets.open) == 1:
            break
        await asyncio.sleep(0.05)
    assert len(sockets.open) == 1  # the slow one is gone, the fast one still talks
    await fast.send_str("still here")
    assert (await fast.receive_str(timeout=5)) == "still here"
    assert slow.closed or slow.close_code in (SLOW_CLIENT, None)
    await slow.close()
    await fast.close()


def test_openapi_documents_the_websocket():
    operation = build_openapi(api)["paths"]["/ws/talk"]["get"]
    assert set(operation["responses"]) == {"101", "400", "403", "503"}
    assert operation["description"] == "Messages."

"""realtime: echo, the count across replicas sharing one real Redis, expiry of a dead
replica, Redis going away, and a slow client cut off while the others keep receiving."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from aiohttp import WSMsgType

from services.kit.keys import WEBSOCKETS
from services.realtime.app import create_app
from services.realtime.keys import HUB
from services.realtime.presence import Presence
from tests.conftest import free_port, redis_process


async def next_count(ws, *, patience: float = 5.0) -> dict:
    message = await ws.receive(timeout=patience)
    assert message.type is WSMsgType.TEXT, message
    return json.loads(message.data)


async def until_count(ws, connections: int, *, patience: float = 10.0) -> dict:
    """Read counter messages until one says `connections`."""
    deadline = time.monotonic() + patience
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no count of {connections} within {patience} s")
        online = await next_count(ws, patience=left)
        if online["connections"] == connections:
            return online


# ---------------------------------------------------------------- echo


async def test_echo_returns_text_and_binary_unchanged_in_order(start_replica):
    client = await start_replica(1)
    async with client.ws_connect("/ws/echo") as ws:
        await ws.send_str("héllo")
        assert await ws.receive_str(timeout=5) == "héllo"
        await ws.send_bytes(b"\x00\xffbytes")
        assert await ws.receive_bytes(timeout=5) == b"\x00\xffbytes"
        for n in range(200):
            await ws.send_str(f"m{n}")
        assert [await ws.receive_str(timeout=5) for _ in range(200)] == [
            f"m{n}" for n in range(200)
        ]


async def test_a_message_over_the_limit_closes_with_1009(start_replica):
    client = await start_replica(1, ws_max_message_bytes=1024)
    async with client.ws_connect("/ws/echo") as ws:
        await ws.send_str("x" * 1024)  # at the limit: fine
        assert len(await ws.receive_str(timeout=5)) == 1024
        await ws.send_bytes(b"x" * 1025)
        message = await ws.receive(timeout=5)
        assert message.type is WSMsgType.CLOSE and message.data == 1009


# ---------------------------------------------------------------- the count


async def test_the_count_is_the_sum_over_replicas(start_replica):
    one, two = await start_replica(1), await start_replica(2)
    a = await one.ws_connect("/ws/counter")
    first = await next_count(a)  # right after the upgrade
    assert first["connections"] >= 1
    b = await one.ws_connect("/ws/counter")
    c = await two.ws_connect("/ws/counter")
    for ws in (a, b, c):
        online = await until_count(ws, 3)
        assert online == {"connections": 3, "replicas": 2, "workers": 2, "partial": False}
    for replica in (one, two):
        resp = await replica.get("/api/v1/realtime/online")
        assert (await resp.json())["connections"] == 3
    await b.close()
    for ws in (a, c):
        await until_count(ws, 2)
    await a.close()
    await until_count(c, 1)
    await c.close()


async def test_replicas_count_each_other_after_redis_loses_the_keys(start_replica, redis):
    """FLUSHALL under subscribed workers: the sequence goes on growing, so the next
    change still reaches every replica (a counter restarting at 1 was ignored)."""
    one, two = await start_replica(1), await start_replica(2)
    a = await one.ws_connect("/ws/counter")
    b = await two.ws_connect("/ws/counter")
    for _ in range(3):  # a sequence well above what a fresh counter would restart at
        extra = await two.ws_connect("/ws/counter")
        await until_count(a, 3)
        await extra.close()
        await until_count(a, 2)
    await redis.flushall()
    c = await two.ws_connect("/ws/counter")
    assert (await until_count(a, 3))["connections"] == 3
    for ws in (a, b, c):
        await ws.close()


async def test_echo_connections_are_not_counted(start_replica):
    client = await start_replica(1)
    async with client.ws_connect("/ws/echo"), client.ws_connect("/ws/counter") as counter:
        assert (await next_count(counter))["connections"] == 1
        resp = await client.get("/api/v1/realtime/online")
        assert (await resp.json())["connections"] == 1


async def test_a_quiet_count_is_sent_again_every_period(start_replica):
    client = await start_replica(1, counter_period=0.2)
    async with client.ws_connect("/ws/counter") as ws:
        seen = [await next_count(ws) for _ in range(4)]  # greeting, then repeats
    assert {s["connections"] for s in seen} == {1}


async def test_a_dead_replica_stops_being_counted_within_the_ttl(start_replica, redis):
    client = await start_replica(1)  # presence_ttl 2 s
    ttl = 2.0  # as realtime_settings sets it
    # A replica that announced 5 clients, then died (it never refreshes or withdraws).
    ghost = Presence(redis, "ghost:1/1", key="realtime:presence", ttl=ttl)
    await ghost.announce(5)
    async with client.ws_connect("/ws/counter") as ws:
        await until_count(ws, 6)
        gone = time.monotonic()
        online = await until_count(ws, 1, patience=ttl * 3)
        assert online["replicas"] == 1
        # bound from the design (entries live ttl/2, refreshed every ttl/4), with slack
        assert time.monotonic() - gone < ttl * 1.5


async def test_a_stopping_replica_withdraws_at_once(start_replica, aiohttp_client):
    one, two = await start_replica(1), await start_replica(2, presence_ttl=60)
    a = await one.ws_connect("/ws/counter")
    b = await two.ws_connect("/ws/counter")
    await until_count(a, 2)
    await b.close()
    await two.close()  # its shutdown withdraws its entry instead of letting it expire
    online = await until_count(a, 1, patience=5)
    assert online["workers"] == 1
    await a.close()


async def test_redis_outage_keeps_echo_and_the_local_count(aiohttp_client, realtime_settings):
    """A Redis of its own, stopped and started again on the same port mid-test."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with redis_process(port):
        one = await aiohttp_client(create_app(realtime_settings(redis_url=url, port=1)))
        two = await aiohttp_client(create_app(realtime_settings(redis_url=url, port=2)))
        counter = await one.ws_connect("/ws/counter")
        other = await two.ws_connect("/ws/counter")
        await until_count(counter, 2)
    # Redis is gone: each replica counts its own clients, echo goes on
    online = await next_count(counter, patience=10)
    while not online["partial"]:
        online = await next_count(counter, patience=10)
    assert online == {"connections": 1, "replicas": 1, "workers": 1, "partial": True}
    async with one.ws_connect("/ws/echo") as echo:
        await echo.send_str("still echoing")
        assert await echo.receive_str(timeout=5) == "still echoing"
    with redis_process(port):  # back, empty: the total recovers by itself
        online = await until_count(counter, 2, patience=15)
        assert online["partial"] is False and online["replicas"] == 2
        await other.close()
        await until_count(counter, 1)
        await counter.close()
        await one.close()
        await two.close()


async def test_unreachable_redis_gives_a_partial_count_not_an_error(
    aiohttp_client, realtime_settings
):
    port = free_port()  # nothing listens there
    settings = realtime_settings(redis_url=f"redis://127.0.0.1:{port}/0", port=1)
    client = await aiohttp_client(create_app(settings))
    async with client.ws_connect("/ws/counter") as ws:
        online = await next_count(ws)
        assert online["connections"] == 1 and online["partial"] is True
        resp = await client.get("/api/v1/realtime/online")
        assert resp.status == 200
        assert await resp.json() == {
            "connections": 1,
            "replicas": 1,
            "workers": 1,
            "partial": True,
        }
    async with client.ws_connect("/ws/echo") as echo:
        await echo.send_str("no Redis needed")
        assert await echo.receive_str(timeout=5) == "no Redis needed"


async def test_a_slow_counter_client_is_cut_off_while_others_keep_receiving(start_replica):
    client = await start_replica(1, ws_send_queue=4)
    hub, sockets = client.app[HUB], client.app[WEBSOCKETS]
    slow = await client.ws_connect("/ws/counter")  # never reads
    slow.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    fast = await client.ws_connect("/ws/counter")
    await until_count(fast, 2)
    # Broadcasts far bigger than the slow socket's buffers (the hub's own messages are
    # small; filling them with counts alone would take hours).
    big = json.dumps({"connections": 2, "padding": "x" * 256 * 1024})
    received = 0

    async def read_fast() -> None:
        nonlocal received
        while received < 60:
            message = await fast.receive(timeout=10)
            assert message.type is WSMsgType.TEXT
            if "padding" in message.data:
                received += 1

    reader = asyncio.create_task(read_fast())
    for _ in range(60):
        for connection in list(hub.clients):
            connection.push(big)
        await asyncio.sleep(0.005)
    await asyncio.wait_for(reader, 30)
    assert sockets.routes["/ws/counter"].slow == 1
    online = await until_count(fast, 1)  # the slow one was cut off, and is not counted
    assert online["connections"] == 1
    await slow.close()
    await fast.close()


@pytest.mark.parametrize("path", ["/", "/api/v1/realtime/docs"])
async def test_pages_are_served(start_replica, path):
    client = await start_replica(1)
    resp = await client.get(path)
    assert resp.status == 200 and resp.content_type == "text/html"


async def test_the_landing_page_uses_relative_socket_urls(start_replica):
    client = await start_replica(1)
    page = await (await client.get("/")).text()
    assert "location.host" in page and '"/ws/counter"' in page and '"/ws/echo"' in page
    assert "http://" not in page.split("<script>", 1)[1]  # no CDN, no fixed host


async def test_openapi_lists_the_websockets(start_replica):
    client = await start_replica(1)
    paths = (await (await client.get("/api/v1/realtime/openapi.json")).json())["paths"]
    assert {"/ws/echo", "/ws/counter", "/api/v1/realtime/online", "/"} <= set(paths)
    assert "101" in paths["/ws/counter"]["get"]["responses"]

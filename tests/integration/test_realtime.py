"""realtime through the ingress: echo, the count over both replicas, /online, the page."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import httpx
import pytest

from .realtime_helpers import all_see, on_both_replicas, open_counters, ws_url

CLIENTS = 8


async def test_echo_through_the_ingress(agora_url):
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(agora_url, "/ws/echo")) as ws,
    ):
        await ws.send_str("hello through nginx")
        assert await ws.receive_str(timeout=10) == "hello through nginx"
        await ws.send_bytes(bytes(range(256)))
        assert await ws.receive_bytes(timeout=10) == bytes(range(256))


async def test_clients_on_both_replicas_all_see_the_same_count(agora_url):
    async with httpx.AsyncClient(base_url=agora_url, timeout=10) as http:
        base = (await http.get("/api/v1/realtime/online")).json()["connections"]
        async with aiohttp.ClientSession() as session:
            counters = await open_counters(session, agora_url, CLIENTS)
            await all_see(counters, base + CLIENTS)
            online = (await http.get("/api/v1/realtime/online")).json()
            assert online == {
                "connections": base + CLIENTS,
                "replicas": 2,
                "workers": 2,
                "partial": False,
            }
            # nginx spread them over both replicas (as Prometheus sees them), and each
            # replica answers /online with the same total
            await on_both_replicas(os.environ["PROMETHEUS_URL"])
            seen = {(await http.get("/api/v1/realtime/online")).json()["connections"]}
            assert seen == {base + CLIENTS}
            await counters.pop().ws.close()
            await all_see(counters, base + CLIENTS - 1)
            assert (await http.get("/api/v1/realtime/online")).json()["connections"] == (
                base + CLIENTS - 1
            )
            await asyncio.gather(*(c.ws.close() for c in counters))


async def test_another_sites_page_may_not_open_a_socket(agora_url):
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(agora_url, "/ws/echo"), origin="http://evil.test")
        assert refused.value.status == 403
        host = agora_url.split("://", 1)[1]
        async with session.ws_connect(ws_url(agora_url, "/ws/echo"), origin=f"http://{host}") as ws:
            await ws.send_str("same origin")
            assert await ws.receive_str(timeout=10) == "same origin"


def test_a_plain_get_of_a_websocket_is_400_in_shape(agora):
    resp = agora.get("/ws/counter")
    assert resp.status_code == 400
    assert set(resp.json()) == {"error", "code", "details"}


def test_the_landing_page_is_served_at_the_root(agora):
    resp = agora.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "/ws/counter" in resp.text


def test_the_cli_client_counts_and_echoes(agora_url):
    import subprocess
    import sys

    run = [sys.executable, "-m", "services.realtime.client"]
    echoed = subprocess.run(
        [*run, "echo", agora_url, "one", "two"], capture_output=True, text=True, timeout=60
    )
    assert echoed.returncode == 0, echoed.stderr
    assert echoed.stdout.splitlines() == ["one", "two"]
    counted = subprocess.run(
        [*run, "count", agora_url, "--once"], capture_output=True, text=True, timeout=60
    )
    assert counted.returncode == 0, counted.stderr
    assert int(counted.stdout) >= 1

"""WebSocket clients through the ingress for the realtime tests (aiohttp's client)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from aiohttp import WSMsgType

from devstack.topology import workloads


def ws_url(agora_url: str, path: str) -> str:
    return agora_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path


class Counter:
    """One /ws/counter client that keeps the last count it was sent."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last: dict | None = None
        self.close_code: int | None = None

    async def read_until(self, predicate, patience: float) -> dict:
        deadline = time.monotonic() + patience
        while self.last is None or not predicate(self.last):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"count not reached within {patience} s; last {self.last}")
            message = await self.ws.receive(timeout=left)
            if message.type is WSMsgType.TEXT:
                self.last = json.loads(message.data)
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                self.close_code = self.ws.close_code
                raise ConnectionError(f"closed with {self.ws.close_code}")
        return self.last

    async def until(self, connections: int, patience: float = 15) -> dict:
        return await self.read_until(lambda o: o["connections"] == connections, patience)


async def open_counters(
    session: aiohttp.ClientSession, agora_url: str, count: int
) -> list[Counter]:
    url = ws_url(agora_url, "/ws/counter")
    sockets = await asyncio.gather(*(session.ws_connect(url) for _ in range(count)))
    return [Counter(ws) for ws in sockets]


async def all_see(counters: list[Counter], connections: int, patience: float = 15) -> None:
    await asyncio.gather(*(c.until(connections, patience) for c in counters))


def per_pod(prometheus_url: str, expression: str) -> dict[str, float]:
    """An instant Prometheus query, as {pod: value}."""
    import httpx

    result = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expression}, timeout=10)
    data = result.json()["data"]["result"]
    return {r["metric"].get("pod", ""): float(r["value"][1]) for r in data}


async def close_code_within(counter: Counter, patience: float) -> int | None:
    """Read until the socket closes: its close code (0 when it had none, as after a
    reset), or None if it is still open after `patience` seconds."""
    try:
        await counter.read_until(lambda online: False, patience=patience)
    except ConnectionError:
        return counter.close_code or 0
    except (AssertionError, TimeoutError):
        return None
    return None


async def on_both_replicas(prometheus_url: str, patience: float = 20) -> None:
    """Wait until Prometheus sees counter sockets on every realtime replica (counted by
    pod, never by name: devstack's are realtime-<n>, Kubernetes' realtime-<hash>-<suffix>)."""
    replicas = next(w.replicas for w in workloads() if w.name == "realtime")
    expression = 'sum by (pod) (websocket_connections{app="realtime",route="/ws/counter"})'
    deadline = time.monotonic() + patience
    while True:
        pods = per_pod(prometheus_url, expression)
        if sum(1 for sockets in pods.values() if sockets > 0) >= replicas >= 2:
            return
        assert time.monotonic() < deadline, f"clients not on both replicas: {pods}"
        await asyncio.sleep(1)

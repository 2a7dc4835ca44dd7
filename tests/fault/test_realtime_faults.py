"""realtime while its replicas die: a SIGKILLed replica's clients stop being counted
within PRESENCE_TTL; a SIGTERMed one closes its sockets with 1001 and its clients,
reconnecting through the ingress, are all counted again."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import httpx

from devstack.topology import workloads
from tests.integration.realtime_helpers import (
    Counter,
    all_see,
    close_code_within,
    on_both_replicas,
    open_counters,
    ws_url,
)

CLIENTS = 8
REALTIME = next(w for w in workloads() if w.name == "realtime")
TTL = float(REALTIME.env["PRESENCE_TTL"])


def online(agora_url: str) -> dict:
    return httpx.get(f"{agora_url}/api/v1/realtime/online", timeout=10).json()


def settled_count(agora_url: str, patience: float = 20) -> int:
    """The count once it holds still for a second: sockets an earlier test just closed
    take a moment to leave it, and a base that still has them is never reached again."""
    deadline = time.monotonic() + patience
    last = online(agora_url)["connections"]
    while time.monotonic() < deadline:
        time.sleep(1)
        now = online(agora_url)["connections"]
        if now == last:
            return now
        last = now
    raise AssertionError(f"the count did not settle within {patience} s (last {last})")


async def test_a_killed_replica_stops_being_counted_within_the_ttl(agora_url, stack):
    base = settled_count(agora_url)
    async with aiohttp.ClientSession() as session:
        counters = await open_counters(session, agora_url, CLIENTS)
        await all_see(counters, base + CLIENTS)
        await on_both_replicas(os.environ["PROMETHEUS_URL"])
        old_pid = stack.crash("realtime-0")
        killed_at = time.monotonic()
        # the proxy closes the killed replica's sockets
        codes = await asyncio.gather(*(close_code_within(c, 2) for c in counters))
        survivors = [c for c, code in zip(counters, codes, strict=True) if code is None]
        assert 0 < len(survivors) < CLIENTS
        await all_see(survivors, base + len(survivors), patience=TTL + 5)
        dropped_after = time.monotonic() - killed_at
        assert dropped_after <= TTL + 1, f"counted {dropped_after:.1f} s after the kill"
        stack.wait_running("realtime-0", other_than=old_pid)
        stack.wait_ready(stack.port("realtime-0"))
        await asyncio.gather(*(c.ws.close() for c in survivors))


async def reconnect(session: aiohttp.ClientSession, agora_url: str, counter: Counter) -> None:
    """What the page and the CLI do after a 1001: connect again (the ingress picks a
    replica that is not going away)."""
    for attempt in range(20):
        try:
            counter.ws = await session.ws_connect(ws_url(agora_url, "/ws/counter"))
            counter.last = None
            return
        except aiohttp.WSServerHandshakeError:  # the draining replica's 503: try again
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("could not reconnect")


async def test_a_terminated_replica_says_going_away_and_its_clients_come_back(agora_url, stack):
    base = settled_count(agora_url)
    async with aiohttp.ClientSession() as session:
        counters = await open_counters(session, agora_url, CLIENTS)
        await all_see(counters, base + CLIENTS)
        await on_both_replicas(os.environ["PROMETHEUS_URL"])
        old_pid = stack.pid("realtime-1")
        os.kill(old_pid, signal.SIGTERM)
        codes = await asyncio.gather(*(close_code_within(c, 8) for c in counters))
        closed = [c for c, code in zip(counters, codes, strict=True) if code is not None]
        assert closed and all(code == 1001 for code in codes if code is not None), codes
        kept = [c for c, code in zip(counters, codes, strict=True) if code is None]
        assert kept, "every client was on the terminated replica"
        for counter in closed:
            await reconnect(session, agora_url, counter)
        await all_see(counters, base + CLIENTS, patience=TTL + 5)
        stack.wait_running("realtime-1", other_than=old_pid)
        stack.wait_ready(stack.port("realtime-1"))
        exits = stack.log("supervisord")
        assert "exited: realtime-1 (exit status 0; expected)" in exits
        await asyncio.gather(*(c.ws.close() for c in counters))

"""realtime: echo round trips through the ingress against a bare `websockets` echo server
(bench/ws_peer.py), idle sockets and memory per socket on one worker at 1k and 10k, and
broadcast latency from a count change to the last of 1,000 counter clients seeing it.

The client is aiohttp's, on uvloop, in this process, for every case alike. 10k sockets
need 10k file descriptors here and in the server: this process raises its soft
RLIMIT_NOFILE to the hard limit (setrlimit; 20,000 on the machine of BENCHMARKS.md),
the servers inherit supervisord's (the same), and agora-serve raises its own soft limit
to the hard one at start, as a WebSocket server must.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import time
from pathlib import Path

import aiohttp
import uvloop

from devstack.layout import Layout
from devstack.stack import program_pid

from .common import BenchEnv

ECHO_SECONDS = 5
ECHO_ROUNDS = 3
ECHO_CONNECTIONS = 16
IDLE_COUNTS = (1_000, 10_000)
BROADCAST_CLIENTS = 1_000
BROADCAST_CHANGES = 30
OPEN_BATCH = 200


def ws(url: str) -> str:
    return url.replace("http://", "ws://", 1)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---------------------------------------------------------------- echo


async def echo_case(url: str, seconds: float) -> tuple[float, float, float]:
    """ECHO_CONNECTIONS sockets, each sending a 32-byte message and waiting for it, in a
    loop: round trips per second, p50 and p99 in ms."""
    latencies: list[float] = []
    payload = "x" * 32
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(url) for _ in range(ECHO_CONNECTIONS)]
        stop = time.perf_counter() + seconds

        async def loop(sock: aiohttp.ClientWebSocketResponse) -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                await sock.send_str(payload)
                await sock.receive_str()
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(loop(s) for s in sockets))
        elapsed = time.perf_counter() - began
        await asyncio.gather(*(s.close() for s in sockets))
    latencies.sort()
    return (
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


async def echo_table(env: BenchEnv) -> str:
    cases = {
        "bare `websockets` echo server (the peer)": ws(f"{env.agora_url}/bench/ws-peer"),
        "realtime /ws/echo": ws(f"{env.agora_url}/ws/echo"),
    }
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    for _ in range(ECHO_ROUNDS):
        for name, url in cases.items():
            runs[name].append(await echo_case(url, ECHO_SECONDS))
    base = statistics.median(r[0] for r in runs[next(iter(cases))])
    lines = [
        "| case | round trips/s | ratio | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, results in runs.items():
        rate = statistics.median(r[0] for r in results)
        p50 = statistics.median(r[1] for r in results)
        p99 = statistics.median(r[2] for r in results)
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.3f} | {p50:.2f} | {p99:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- idle sockets


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_of(master: int) -> int:
    """The one worker process of a gunicorn master (realtime runs one per replica)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, f"expected one worker under {master}: {children}"
    return int(children[0])


async def hold(url: str, count: int, pid: int) -> tuple[int, int, float]:
    """Open `count` idle sockets to `url`: (sockets open, RSS growth in bytes, seconds)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.sleep(0.5)
        before = rss_bytes(pid)
        began = time.perf_counter()
        sockets = []
        for start in range(0, count, OPEN_BATCH):
            batch = min(OPEN_BATCH, count - start)
            sockets += await asyncio.gather(
                *(session.ws_connect(url, autoping=True) for _ in range(batch))
            )
        opened = time.perf_counter() - began
        await asyncio.sleep(2)  # let the server settle (allocator, timers)
        grown = rss_bytes(pid) - before
        held = sum(not s.closed for s in sockets)
        await asyncio.gather(*(s.close() for s in sockets))
    return held, grown, opened


async def idle_table(env: BenchEnv) -> str:
    layout = Layout.from_env()
    replicas = {r.name: r.port for r in layout.replicas(_workloads())}
    servers = {
        "bare `websockets` echo server (the peer)": (
            f"ws://127.0.0.1:{replicas['bench-ws-peer-0']}/bench/ws-peer",
            program_pid(layout, "bench-ws-peer-0"),
        ),
        "realtime /ws/echo, one worker": (
            f"ws://127.0.0.1:{replicas['realtime-0']}/ws/echo",
            worker_of(program_pid(layout, "realtime-0")),
        ),
    }
    lines = [
        "| server | sockets | held | RSS growth | per socket | opened in |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for count in IDLE_COUNTS:
        for name, (url, pid) in servers.items():
            held, grown, opened = await hold(url, count, pid)
            lines.append(
                f"| {name} | {count:,} | {held:,} | {grown / 2**20:.1f} MiB | "
                f"{grown / count / 1024:.1f} KiB | {opened:.1f} s |"
            )
    return "\n".join(lines)


def _workloads():
    from devstack.topology import workloads

    return workloads()


# ---------------------------------------------------------------- broadcast


async def broadcast_table(env: BenchEnv) -> str:
    """1,000 counter clients through the ingress (over both replicas); one more socket
    opens or closes (the change), and each change's time until the last client got the
    new count is one sample."""
    url = ws(f"{env.agora_url}/ws/counter")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = []
        for _ in range(0, BROADCAST_CLIENTS, OPEN_BATCH):
            clients += await asyncio.gather(*(session.ws_connect(url) for _ in range(OPEN_BATCH)))
        target = BROADCAST_CLIENTS
        have = [False] * len(clients)  # each client: has it seen `target`?
        seen_at = [0.0] * len(clients)
        everyone = asyncio.Event()
        waiting = len(clients)

        def expect(total: int) -> None:
            nonlocal target, waiting
            target, waiting = total, len(clients)
            have[:] = [False] * len(clients)
            everyone.clear()

        async def read(index: int) -> None:
            nonlocal waiting
            async for message in clients[index]:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                if json.loads(message.data)["connections"] == target and not have[index]:
                    have[index] = True
                    seen_at[index] = time.perf_counter()
                    waiting -= 1
                    if waiting == 0:
                        everyone.set()

        expect(BROADCAST_CLIENTS)
        readers = [asyncio.create_task(read(i)) for i in range(len(clients))]
        await asyncio.wait_for(everyone.wait(), 60)
        last_client: list[float] = []
        every_client: list[float] = []
        extra = None
        for change in range(BROADCAST_CHANGES):
            await asyncio.sleep(0.6)  # past COUNTER_MIN_INTERVAL: changes do not merge
            began = time.perf_counter()
            if extra is None:
                expect(target + 1)
                extra = await session.ws_connect(url)
            else:
                expect(target - 1)
                await extra.close()
                extra = None
            try:
                await asyncio.wait_for(everyone.wait(), 10)
            except TimeoutError:
                raise RuntimeError(f"change {change}: not every client saw {target}") from None
            delays = [t - began for t in seen_at]
            last_client.append(max(delays))
            every_client.extend(delays)
        for task in readers:
            task.cancel()
        if extra is not None:
            await extra.close()
        await asyncio.gather(*(c.close() for c in clients))

    def pct(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    return "\n".join(
        [
            "| from a count change to | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|",
            f"| the last of {BROADCAST_CLIENTS:,} clients seeing it ({BROADCAST_CHANGES} "
            f"changes) | {pct(last_client, 0.5):.1f} | {pct(last_client, 0.99):.1f} | "
            f"{max(last_client) * 1000:.1f} |",
            f"| each client seeing it | {pct(every_client, 0.5):.1f} | "
            f"{pct(every_client, 0.99):.1f} | {max(every_client) * 1000:.1f} |",
        ]
    )


def run(env: BenchEnv) -> str:
    limit = raise_fd_limit()

    async def everything() -> tuple[str, str, str]:
        return await echo_table(env), await idle_table(env), await broadcast_table(env)

    echo, idle, broadcast = uvloop.run(everything())
    return "\n\n".join(
        [
            "## realtime",
            f"Echo round trips through the ingress, {ECHO_CONNECTIONS} sockets each sending"
            f" 32 bytes and waiting for them, {ECHO_SECONDS} s per case, {ECHO_ROUNDS}"
            " interleaved rounds, medians (both servers: 2 processes behind the same nginx):",
            echo,
            "Idle sockets on one worker, opened straight to its port (nginx's 2 x 4,096"
            " worker connections would cap the ingress first); RSS of that one process"
            f" before and 2 s after (file descriptor limit raised to {limit:,}):",
            idle,
            f"Broadcast: {BROADCAST_CLIENTS:,} /ws/counter clients through the ingress, over"
            " both replicas; one socket more or less is the change:",
            broadcast,
        ]
    )

"""`make bench BENCH=peers`: catalog against the bare frameworks.

GET /api/v1/products/{id} and the list of 20 products from catalog (the full kit) and
from its peers in bare aiohttp, Starlette and FastAPI (bench/peers/), straight to one
replica's port and through the ingress; and
the kit's cost, as catalog's handler with and without the kit in one server.

Every case runs once per round, the rounds interleaved and rotated, medians reported.
Beside each figure: the CPU time per request of the server's processes and PostgreSQL
(plus nginx through the ingress), read from /proc, which other load on a shared machine
does not inflate the way it inflates wall time; and how busy the rest of the machine was.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from devstack.layout import Layout
from devstack.stack import program_pid
from devstack.topology import Workload, workloads

from ..common import (
    BenchEnv,
    Result,
    interleaved,
    local_only,
    machine_cpu_seconds,
    tree_cpu_seconds,
    wrk,
)

SECONDS = int(os.environ.get("BENCH_PEERS_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_PEERS_ROUNDS", "5"))
CONNECTIONS = 32
THREADS = 1  # one wrk thread leaves more of the 2 cores to the servers
MIN_PRODUCTS = 40  # rows in catalog, so the list is a full page of 20
LIST_SIZE = 20

CATALOG = "catalog (kit)"
PEERS = {  # case name -> the workload in bench/values.yaml
    "bare aiohttp + asyncpg": "bench-aiohttp",
    "Starlette + uvicorn + asyncpg": "bench-starlette",
    "FastAPI + asyncpg": "bench-fastapi",
}
ENDPOINTS = {
    "GET /api/v1/products/{id}": "/api/v1/products/1",
    f"GET /api/v1/products (list of {LIST_SIZE})": f"/api/v1/products?limit={LIST_SIZE}&offset=0",
}
MISSING = "/api/v1/products/999999999"

PAIR = "bench-catalog"  # bench/catalog_pair.py
KIT_CASES = {
    "GET /api/v1/products/{id} in the kit": "/api/v1/products/1",
    "the same handler without the kit": "/bench/without-kit/api/v1/products/1",
    "no-op handler in the kit": "/bench/noop/1",
    "the same no-op without the kit": "/bench/without-kit/bench/noop/1",
}


@dataclass(frozen=True)
class Server:
    """One server under test: where to reach it and which processes do its work."""

    name: str
    workload: Workload
    prefix: str  # the peers serve catalog's paths under their ingress prefix
    direct: str  # replica 0, straight to its port
    ingress: str
    direct_roots: tuple[int, ...]  # replica 0's gunicorn master, PostgreSQL
    ingress_roots: tuple[int, ...]  # every replica's master, PostgreSQL, nginx


def servers(env: BenchEnv) -> tuple[list[Server], Server]:
    layout = Layout.from_env()
    by_name = {w.name: w for w in workloads()}
    replicas = layout.replicas(list(by_name.values()))
    postgres, nginx = program_pid(layout, "postgres"), program_pid(layout, "nginx")
    if postgres is None or nginx is None:
        raise SystemExit("bench peers: PostgreSQL or nginx of the devstack is not running")

    def server(name: str, workload_name: str, prefix: str) -> Server:
        workload = by_name[workload_name]
        own = [r for r in replicas if r.workload is workload]
        pids = [program_pid(layout, r.name) for r in own]
        if None in pids:
            raise SystemExit(f"bench peers: a replica of {workload_name} is not running")
        return Server(
            name,
            workload,
            prefix,
            f"http://127.0.0.1:{own[0].port}",
            env.agora_url,
            (pids[0], postgres),  # type: ignore[arg-type]
            (*pids, postgres, nginx),  # type: ignore[arg-type]
        )

    catalog = by_name["catalog"]
    compared = [server(CATALOG, "catalog", "")]
    for name, workload_name in PEERS.items():
        peer = by_name[workload_name]
        if (peer.replicas, peer.workers) != (catalog.replicas, catalog.workers):
            raise SystemExit(
                f"bench peers: {workload_name} runs {peer.replicas} x {peer.workers}, "
                f"catalog {catalog.replicas} x {catalog.workers}: give them the same"
            )
        compared.append(server(name, workload_name, peer.ingress[0]))
    return compared, server("pair", PAIR, "")


def enough_products(url: str) -> int:
    """At least MIN_PRODUCTS rows (created through catalog's API); returns the count."""
    with httpx.Client(base_url=url, timeout=30) as client:
        total = client.get("/api/v1/products", params={"limit": 1}).raise_for_status().json()
        for index in range(total["total"], MIN_PRODUCTS):
            client.post(
                "/api/v1/products",
                json={
                    "name": f"Bench {index}",
                    "price": f"{index}.{index % 100:02d}",
                    "quantity": index,
                },
            ).raise_for_status()
        return max(total["total"], MIN_PRODUCTS)


def same_answers(compared: Sequence[Server]) -> str:
    """Every server answers every endpoint with the same bytes, and 404 in the error
    shape for a missing id; otherwise the comparison is meaningless and the run stops."""
    with httpx.Client(timeout=10) as client:
        for path in ENDPOINTS.values():
            bodies = {s.name: client.get(s.direct + s.prefix + path).content for s in compared}
            if len(set(bodies.values())) != 1:
                raise SystemExit(f"bench peers: the answers to {path} differ: {bodies}")
        for s in compared:
            missing = client.get(s.direct + s.prefix + MISSING)
            if missing.status_code != 404 or missing.json().get("code") != "not_found":
                raise SystemExit(f"bench peers: {s.name} answers {MISSING} with {missing}")
    return "identical bytes from every server for both endpoints; 404 `not_found` for a missing id"


class Cases:
    """wrk runs that also record the CPU time per request of the processes named."""

    def __init__(self) -> None:
        self.cpu_us: dict[str, list[float]] = {}
        self.cases: list[tuple[str, Callable[[], Result]]] = []

    def add(self, name: str, url: str, roots: Sequence[int]) -> None:
        local_only(url)

        def run() -> Result:
            before = tree_cpu_seconds(roots)
            result = wrk(name, url, seconds=SECONDS, connections=CONNECTIONS, threads=THREADS)
            used = tree_cpu_seconds(roots) - before
            requests = result.requests_per_s * SECONDS
            self.cpu_us.setdefault(name, []).append(used / requests * 1e6 if requests else 0.0)
            return result

        self.cases.append((name, run))

    def cpu(self, name: str) -> float:
        return statistics.median(self.cpu_us[name])


def comparison(
    results: dict[str, Result], cases: Cases, names: Sequence[str], target: str
) -> tuple[str, float, float]:
    """A table of one endpoint on one path. Two ratios against the fastest peer: of
    throughput (wall time: what the targets name), and of CPU per request (the peer's
    CPU over this case's), which is what throughput converges to when the servers have
    the machine to themselves, and which other load on a shared machine disturbs far
    less. Returns the table and catalog's two ratios."""
    peers = [n for n in names if not n.startswith(CATALOG)]
    fastest = max((results[n] for n in peers), key=lambda r: r.requests_per_s)
    leanest = min(cases.cpu(n) for n in peers)
    lines = [
        f"| {target} | req/s | vs fastest peer | CPU us/req | vs leanest peer (CPU) | "
        "p50 ms | p90 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        r = results[name]
        lines.append(
            f"| {name.split(' | ')[0]} | {r.requests_per_s:,.0f} | "
            f"{r.requests_per_s / fastest.requests_per_s:.3f} | {cases.cpu(name):.0f} | "
            f"{leanest / cases.cpu(name):.3f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} |"
        )
    catalog = names[0]
    return (
        "\n".join(lines),
        results[catalog].requests_per_s / fastest.requests_per_s,
        leanest / cases.cpu(catalog),
    )


def verdict(value: float, target: float, *, at_most: bool = False, unit: str = "x") -> str:
    if (value <= target) if at_most else (value >= target):
        return "met"
    return f"**missed** by {abs(value - target):.3f}{unit}"


def run(env: BenchEnv) -> str:
    compared, pair = servers(env)
    rows = enough_products(env.agora_url)
    answers = same_answers(compared)
    cases = Cases()
    groups: list[tuple[str, str, list[str]]] = []  # (path kind, endpoint, case names)
    for kind in ("straight to one replica's port", "through the ingress"):
        for endpoint, path in ENDPOINTS.items():
            names = []
            for s in compared:
                name = f"{s.name} | {kind} | {endpoint}"
                direct = kind.startswith("straight")
                base, roots = (s.direct, s.direct_roots) if direct else (s.ingress, s.ingress_roots)
                cases.add(name, base + s.prefix + path, roots)
                names.append(name)
            groups.append((kind, endpoint, names))
    for name, path in KIT_CASES.items():
        cases.add(name, pair.direct + path, pair.direct_roots)

    supervisord = [int(open(os.path.join(env.run_dir, "supervisord.pid")).read())]  # noqa: SIM115
    load_before = os.getloadavg()
    busy0, all0 = machine_cpu_seconds()
    ours0, stack0 = _wrk_cpu_seconds(), tree_cpu_seconds(supervisord)
    started = time.monotonic()
    results = {r.name: r for r in interleaved(cases.cases, rounds=ROUNDS, rotate=True)}
    elapsed = time.monotonic() - started
    busy1, all1 = machine_cpu_seconds()
    ours, stack = _wrk_cpu_seconds() - ours0, tree_cpu_seconds(supervisord) - stack0
    load_after = os.getloadavg()
    others = max(0.0, (busy1 - busy0) - ours - stack)
    cores = (all1 - all0) / elapsed

    out = [
        "## Peers: catalog against bare aiohttp, Starlette and FastAPI",
        "",
        f"`bench/peers/`: catalog ({compared[0].workload.replicas} replicas x "
        f"{compared[0].workload.workers} gunicorn workers, the full kit) and its peers "
        "(bench/peers/: the same two reads written plainly, each under gunicorn with the "
        "same replicas and workers: aiohttp's uvloop worker, uvicorn's worker with "
        "httptools and uvloop) against catalog's own PostgreSQL rows "
        f"({rows} products). Answers checked first: {answers}. wrk -t{THREADS} "
        f"-c{CONNECTIONS}, {SECONDS} s per case, {ROUNDS} interleaved rounds (each round "
        "starts one case later), medians. Straight to the port: replica 0 alone (2 "
        "workers); through the ingress: nginx to both replicas. CPU us/req: CPU time of "
        "the server's processes + PostgreSQL (+ nginx through the ingress) per request.",
        "",
        f"Machine during the run: load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; of its {cores:.1f} cores' time over {elapsed:.0f} s, "
        f"this devstack used {stack / elapsed:.2f} cores, wrk "
        f"{ours / elapsed:.2f}, everything else on the machine {others / elapsed:.2f}.",
        "",
    ]
    ratios: list[tuple[str, float, float]] = []
    for kind, endpoint, names in groups:
        text, ratio, cpu_ratio = comparison(results, cases, names, f"{endpoint}, {kind}")
        out += [text, ""]
        ratios.append((f"{endpoint}, {kind}", ratio, cpu_ratio))
    out += [
        "| catalog against the best bare peer | throughput | target >= 1.0 | CPU per request |",
        "|---|---:|---|---:|",
    ]
    out += [
        f"| {what} | {ratio:.3f} | {verdict(ratio, 1.0)} | {cpu_ratio:.3f} |"
        for what, ratio, cpu_ratio in ratios
    ]
    out.append("")

    kit = {name: results[name] for name in KIT_CASES}
    names = list(KIT_CASES)
    out += [
        f"Kit cost, in one server ({PAIR}: bench/catalog_pair.py, 1 replica x "
        f"{pair.workload.workers} workers, straight to its port), same rounds:",
        "",
        "| case | req/s | p50 ms | p99 ms | errors | CPU us/req |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        r = kit[name]
        out.append(
            f"| {name} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors} | {cases.cpu(name):.0f} |"
        )
    real = 1 - kit[names[0]].requests_per_s / kit[names[1]].requests_per_s
    noop = 1 - kit[names[2]].requests_per_s / kit[names[3]].requests_per_s
    real_cpu = cases.cpu(names[0]) - cases.cpu(names[1])
    noop_cpu = cases.cpu(names[2]) - cases.cpu(names[3])
    out += [
        "",
        "| the kit's cost | throughput | target | CPU per request | as a share |",
        "|---|---:|---|---:|---:|",
        f"| on GET /api/v1/products/{{id}} | {real * 100:.1f} % | at most 5 %: "
        f"{verdict(real * 100, 5.0, at_most=True, unit=' points')} | {real_cpu:+.0f} us | "
        f"{real_cpu / cases.cpu(names[0]) * 100:.1f} % |",
        f"| on a no-op handler | {noop * 100:.1f} % | (reported) | {noop_cpu:+.0f} us | "
        f"{noop_cpu / cases.cpu(names[2]) * 100:.1f} % |",
    ]
    return "\n".join(out)


def _wrk_cpu_seconds() -> float:
    """CPU used so far by this process's children: the wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

"""The pipeline's executor overhead, and the stats flow against its calls in sequence.

1. Graphs of `wait 0` steps, 1/10/100 wide (independent) and 1/10/100 deep (a chain),
   through the ingress: the run's total time as the executor reports it, and the HTTP
   latency seen by the client. Overhead per step (wide) and per level (deep) is the
   growth over the one-step graph, divided by the steps added.
2. The stats flow (8 calc calls in 3 levels, made by pipeline) against the same 8 calls
   made one after another by the client, each through the ingress.
3. Throughput of the stats flow beside a single calc call (wrk).

Cases are interleaved in rounds (A B C A B C ...), medians over the rounds' samples.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import httpx

from .common import BenchEnv, interleaved, table, wrk

SIZES = (1, 10, 100)
ROUNDS = 3
SAMPLES = 20  # requests per case per round
NUMBERS = list(range(1, 11))


def wide(n: int) -> dict:
    return {"steps": {f"s{i}": {"op": "wait", "input": {"ms": 0}} for i in range(n)}}


def deep(n: int) -> dict:
    steps = {"s0": {"op": "wait", "input": {"ms": 0}}}
    for i in range(1, n):
        steps[f"s{i}"] = {"op": "wait", "input": {"ms": {"$ref": f"s{i - 1}.waited_ms"}}}
    return {"steps": steps}


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def executor_overhead(client: httpx.Client) -> str:
    graphs = {f"{shape.__name__} {n}": (n, shape(n)) for shape in (wide, deep) for n in SIZES}
    server_ms: dict[str, list[float]] = {name: [] for name in graphs}
    client_ms: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(ROUNDS):
        for name, (_, body) in graphs.items():
            for _ in range(SAMPLES):
                started = time.perf_counter()
                resp = client.post("/api/v1/pipeline/runs", json=body)
                client_ms[name].append((time.perf_counter() - started) * 1000)
                resp.raise_for_status()
                assert resp.json()["status"] == "succeeded", resp.text
                server_ms[name].append(resp.json()["total_ms"])
    lines = [
        "| graph | steps | run total_ms p50 (executor) | HTTP p50 ms | "
        "added per step/level, us (executor) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (n, _) in graphs.items():
        run = statistics.median(server_ms[name])
        one = statistics.median(server_ms[f"{name.split()[0]} 1"])
        added = "-" if n == 1 else f"{(run - one) * 1000 / (n - 1):.0f}"
        lines.append(
            f"| {name} | {n} | {run:.2f} | {statistics.median(client_ms[name]):.2f} | {added} |"
        )
    return "\n".join(lines)


def stats_in_sequence(client: httpx.Client) -> None:
    """The stats flow's eight calls, each waiting for the one before."""

    def calc(op: str, body: dict) -> dict:
        resp = client.post(f"/api/v1/calc/{op}", json=body)
        resp.raise_for_status()
        return resp.json()

    total = calc("sum", {"numbers": NUMBERS})["sum"]
    product = calc("product", {"numbers": NUMBERS})["product"]
    calc("quotient", {"product": product, "sum": total})
    squares = calc("squares", {"numbers": NUMBERS})["squares"]
    roots = calc("roots", {"numbers": NUMBERS})["roots"]
    squares_total = calc("sum", {"numbers": squares})["sum"]
    roots_total = calc("sum", {"numbers": roots})["sum"]
    calc("sum", {"numbers": [squares_total, roots_total]})


def stats_flow_latency(client: httpx.Client) -> str:
    def flow() -> None:
        client.post("/api/v1/pipeline/stats", json={"numbers": NUMBERS}).raise_for_status()

    def one_call() -> None:
        client.post("/api/v1/calc/sum", json={"numbers": NUMBERS}).raise_for_status()

    one_step = {"steps": {"sum": {"op": "sum", "input": {"numbers": NUMBERS}}}}

    def one_step_run() -> None:
        client.post("/api/v1/pipeline/runs", json=one_step).raise_for_status()

    cases = {
        "stats flow (pipeline, 8 calls in 3 levels)": flow,
        "the 8 calls one after another (client)": lambda: stats_in_sequence(client),
        "one calc call (client -> calc)": one_call,
        "a run of one calc step (client -> pipeline -> calc)": one_step_run,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, case in cases.items():
            samples[name].extend(timed(case) for _ in range(SAMPLES))
    base = statistics.median(samples["the 8 calls one after another (client)"])
    lines = ["| case | p50 ms | p90 ms | p50 ratio to sequential |", "|---|---:|---:|---:|"]
    for name, values in samples.items():
        p50 = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        lines.append(f"| {name} | {p50:.2f} | {p90:.2f} | {p50 / base:.2f} |")
    return "\n".join(lines)


def throughput(env: BenchEnv) -> str:
    body = json.dumps({"numbers": NUMBERS})
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    cases = [
        (
            name,
            lambda path=path, name=name: wrk(
                name, env.agora_url + path, seconds=5, connections=16, lua=lua
            ),
        )
        for name, path in (
            ("calc sum", "/api/v1/calc/sum"),
            ("pipeline stats", "/api/v1/pipeline/stats"),
        )
    ]
    return table(interleaved(cases, rounds=2), baseline="calc sum")


def run(env: BenchEnv) -> str:
    with httpx.Client(base_url=env.agora_url, timeout=30) as client:
        for _ in range(20):  # warm up connections and workers
            client.post("/api/v1/pipeline/stats", json={"numbers": NUMBERS})
        overhead = executor_overhead(client)
        latency = stats_flow_latency(client)
    rate = throughput(env)
    return "\n\n".join(
        [
            "## pipeline",
            f"Executor overhead: graphs of `wait 0` steps, {ROUNDS} rounds x {SAMPLES} "
            "requests, one client, sequential.",
            overhead,
            f"Stats flow for {len(NUMBERS)} numbers against its calls in sequence "
            f"({ROUNDS} rounds x {SAMPLES}, one keep-alive client):",
            latency,
            "Throughput, wrk 5 s x 2 rounds, 16 connections:",
            rate,
        ]
    )

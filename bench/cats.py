"""Cat facts: how long N facts take against the ideal, and factcheck's throughput.

`make bench` merges bench/values.yaml over values.yaml, so factsource answers every call
after 50 ms, like a remote API. facts makes FACTS_CONCURRENCY calls at a time, so N
facts ideally take ceil(N / concurrency) x 50 ms. factsource bundles a few hundred
facts and answers at random, so repeats are replaced by further calls (and 500 distinct
facts cannot exist there): the table also shows the calls made and the ideal for them.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import httpx
import orjson

from devstack.topology import workloads

from .common import BenchEnv, Result, interleaved, local_only, wrk

AMOUNTS = (1, 10, 100, 500)
ROUNDS = 5
BATCHES = (1, 10, 100, 1000)
FACTS_FILE = Path(__file__).resolve().parent.parent / "services" / "factsource" / "facts.txt"


def run(env: BenchEnv) -> str:
    local_only(env.agora_url)
    services = {w.name: w for w in workloads()}
    concurrency = int(services["facts"].env["FACTS_CONCURRENCY"])
    latency_ms = int(services["factsource"].env["ARTIFICIAL_LATENCY_MS"])
    return "\n\n".join(
        [
            "## Cat facts",
            f"factsource latency {latency_ms} ms; facts FACTS_CONCURRENCY={concurrency}.",
            "### Time for N facts (GET /api/v1/cats/N, one request at a time)",
            facts_table(env, concurrency, latency_ms),
            "### factcheck throughput (POST /api/v1/facts, 8 connections, 5 s x 3 rounds)",
            factcheck_table(env),
        ]
    )


# ---------------------------------------------------------------- facts


def facts_table(env: BenchEnv, concurrency: int, latency_ms: int) -> str:
    timings: dict[int, list[float]] = {n: [] for n in AMOUNTS}
    answers: dict[int, list[dict]] = {n: [] for n in AMOUNTS}
    with httpx.Client(base_url=env.agora_url, timeout=60) as client:
        client.get("/api/v1/cats/1").raise_for_status()  # warm the connections
        for _ in range(ROUNDS):  # interleaved: each round asks every amount once
            for amount in AMOUNTS:
                started = time.perf_counter()
                response = client.get(f"/api/v1/cats/{amount}")
                timings[amount].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                answers[amount].append(response.json())

    def ideal(calls: float) -> float:
        return math.ceil(calls / concurrency) * latency_ms

    lines = [
        "| N | median ms | min ms | ideal ms | median / ideal | returned | calls "
        "| ideal for the calls ms | median / that |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for amount in AMOUNTS:
        median = statistics.median(timings[amount])
        calls = statistics.median(a["upstream_calls"] for a in answers[amount])
        returned = statistics.median(a["returned"] for a in answers[amount])
        lines.append(
            f"| {amount} | {median:.0f} | {min(timings[amount]):.0f} | {ideal(amount):.0f} "
            f"| {median / ideal(amount):.2f} | {returned:.0f} | {calls:.0f} "
            f"| {ideal(calls):.0f} | {median / ideal(calls):.2f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- factcheck


def factcheck_lua(batch: int) -> str:
    facts = FACTS_FILE.read_text().splitlines()
    body = orjson.dumps({"facts": [facts[i % len(facts)] for i in range(batch)]}).decode()
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )


def factcheck_table(env: BenchEnv) -> str:
    url = f"{env.agora_url}/api/v1/facts"
    cases = [
        (
            f"{batch} facts per request",
            lambda batch=batch: wrk(
                f"{batch} facts per request",
                url,
                seconds=5,
                connections=8,
                lua=factcheck_lua(batch),
            ),
        )
        for batch in BATCHES
    ]
    results: list[Result] = interleaved(cases, rounds=3)
    base = results[0].requests_per_s * BATCHES[0]
    lines = [
        "| batch | req/s | facts/s | facts/s ratio | p50 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch, result in zip(BATCHES, results, strict=True):
        facts_per_s = result.requests_per_s * batch
        lines.append(
            f"| {batch} | {result.requests_per_s:,.0f} | {facts_per_s:,.0f} "
            f"| {facts_per_s / base:.1f} | {result.p50_ms:.2f} | {result.p99_ms:.2f} "
            f"| {result.errors} |"
        )
    return "\n".join(lines)

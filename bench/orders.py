"""Orders through the ingress: placing an order beside reading a product, what an
Idempotency-Key costs, and how long an order's event takes to become a notification."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from .common import (
    THREAD_IDS_LUA,
    BenchEnv,
    Result,
    interleaved,
    table,
    tree_cpu_seconds,
    wrk,
)

SECONDS = 5
ROUNDS = 5
CONNECTIONS = 16
DELIVERY_ORDERS = 200
DELIVERY_RATE = 50  # orders per second while delivery latency is measured

POST_ORDER = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"product_id": %(product)d, "quantity": 1}'
"""

# Each request its own key: thread ids keep the keys of wrk's threads apart.
POST_ORDER_WITH_KEY = (
    POST_ORDER
    + THREAD_IDS_LUA
    + """
local counter = 0
function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = "%(run)s-" .. tid .. "-" .. counter
  return wrk.format()
end
"""
)

# The same key every time: every request after the first is a replay.
POST_ORDER_REPLAYED = POST_ORDER + 'wrk.headers["Idempotency-Key"] = "%(replayed)s"\n'


def _product(client: httpx.Client, quantity: int) -> int:
    resp = client.post(
        "/api/v1/products",
        json={"name": f"bench {uuid.uuid4().hex[:8]}", "price": "1.00", "quantity": quantity},
    )
    resp.raise_for_status()
    return resp.json()["id"]


def stack_cpu_seconds(run_dir: str) -> float:
    """CPU time used so far by this devstack's processes (every descendant of its
    supervisord: nginx, PostgreSQL, Redis, the services), not by wrk or anything else
    on the machine: a cost that other load on a shared machine does not distort."""
    return tree_cpu_seconds([int((Path(run_dir) / "supervisord.pid").read_text())])


def _throughput(env: BenchEnv, product: int) -> str:
    replayed_key = uuid.uuid4().hex[:8]
    cpu: dict[str, list[float]] = {}

    def case(name: str, path: str, lua: str | None = None):
        def run() -> Result:
            # Keys unique to each wrk run: a later round must not replay an earlier one's.
            values = {"product": product, "run": uuid.uuid4().hex[:8], "replayed": replayed_key}
            script = lua % values if lua else None
            before = stack_cpu_seconds(env.run_dir)
            result = wrk(
                name, env.agora_url + path, seconds=SECONDS, connections=CONNECTIONS, lua=script
            )
            used = stack_cpu_seconds(env.run_dir) - before
            cpu.setdefault(name, []).append(used / (result.requests_per_s * SECONDS) * 1000)
            return result

        return name, run

    baseline = "GET /api/v1/products/{id}"
    results = interleaved(
        [
            case(baseline, f"/api/v1/products/{product}"),
            case("POST /api/v1/orders", "/api/v1/orders", POST_ORDER),
            case("POST /api/v1/orders + Idempotency-Key", "/api/v1/orders", POST_ORDER_WITH_KEY),
            case("POST /api/v1/orders, replayed key", "/api/v1/orders", POST_ORDER_REPLAYED),
        ],
        rounds=ROUNDS,
    )
    rows = table(results, baseline=baseline).splitlines()
    rows[0] += " CPU ms/req |"
    rows[1] += "---:|"
    for index, result in enumerate(results, start=2):
        rows[index] += f" {statistics.median(cpu[result.name]):.2f} |"
    return "\n".join(rows)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _delivery(env: BenchEnv, product: int) -> str:
    """Orders at a steady rate; for each, from its commit (the order.created event's
    time, just before the 201) to its notification's commit, from the two services' own
    timestamps (one machine, one clock)."""
    with httpx.Client(base_url=env.agora_url, timeout=30) as client:
        order_ids = []
        started = time.monotonic()
        for n in range(DELIVERY_ORDERS):
            time.sleep(max(0.0, started + n / DELIVERY_RATE - time.monotonic()))
            resp = client.post("/api/v1/orders", json={"product_id": product, "quantity": 1})
            resp.raise_for_status()
            order_ids.append(resp.json()["id"])
        latencies = []
        deadline = time.monotonic() + 60
        for order_id in order_ids:
            while True:
                items = client.get("/api/v1/notifications", params={"order_id": order_id}).json()[
                    "items"
                ]
                if items or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if items:
                note = items[0]
                latencies.append(
                    (
                        datetime.fromisoformat(note["processed_at"])
                        - datetime.fromisoformat(note["occurred_at"])
                    ).total_seconds()
                    * 1000
                )
    missing = len(order_ids) - len(latencies)
    return (
        "| orders | rate | p50 ms | p90 ms | p99 ms | max ms | mean ms | missing |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {len(order_ids)} | {DELIVERY_RATE}/s | {_percentile(latencies, 0.5):.1f} |"
        f" {_percentile(latencies, 0.9):.1f} | {_percentile(latencies, 0.99):.1f} |"
        f" {max(latencies):.1f} | {statistics.mean(latencies):.1f} | {missing} |"
    )


def run(env: BenchEnv) -> str:
    with httpx.Client(base_url=env.agora_url, timeout=30) as client:
        product = _product(client, quantity=10_000_000)
    throughput = _throughput(env, product)
    delivery = _delivery(env, product)
    return (
        "## orders\n\n"
        f"wrk, {CONNECTIONS} connections, {SECONDS} s per case, {ROUNDS} interleaved rounds"
        " (medians); ratio = throughput relative to GET of a product in the same run;"
        " CPU ms/req = CPU time of the whole devstack (nginx, PostgreSQL, Redis, every"
        " service) per request, which other load on the machine does not inflate.\n\n"
        f"{throughput}\n\n"
        "Event delivery: order committed (order.created) -> notification committed.\n\n"
        f"{delivery}\n"
    )

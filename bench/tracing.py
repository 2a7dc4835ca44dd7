"""Tracing's cost (services/kit/tracing.py), two ways in one run:

- through the ingress: GET product and POST order on the bench stack (tracing off: no
  endpoint) beside a second, traced devstack of the same values (AGORA_TRACING=1, its
  own receiver), where each request's traceparent says sampled for 1 in 100 requests
  (1 %) or for all (100 %), interleaved rounds; throughput, latency and the CPU the
  stack's services used per request;
- in-process: the kit's product-sized route off, on at ratio 0 (every request gets a
  non-recording span and its ids) and on at ratio 1 (every request recorded and exported
  over OTLP/HTTP to devstack's receiver in a process of its own): the kit's fixed cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from devstack import postgres, stack
from devstack.layout import Layout
from services.kit import tracing
from services.kit.api import Api
from services.kit.app import create_app
from services.kit.config import KitSettings
from services.kit.keys import ACCESS_LOG, DB_POOL
from services.kit.migrate import migrate
from tests.conftest import free_port, wait_until

from . import kit_app
from .common import THREAD_IDS_LUA, BenchEnv, Result, cpu_by_group, interleaved, wrk
from .kit import _time, mocked_requests
from .orders import POST_ORDER

ROUNDS = 7
REQUESTS = 5_000  # per round and case
EXPORT_CHUNK = 1_000  # ratio-1 requests between two flushes of the exporter
OFF = "tracing off (no endpoint)"
RATIO_0 = "on, ratio 0 (nothing sampled)"
RATIO_1 = "on, ratio 1 (every request exported)"
UNSAMPLED = "on, the caller's traceparent says not sampled"
CASES = (OFF, RATIO_0, UNSAMPLED, RATIO_1)
# What 99 of 100 requests through the ingress carry at 1 %
UNSAMPLED_TRACEPARENT = {"traceparent": f"00-{'4b' * 16}-{'a7' * 8}-00"}
# bench/kit.py's product-sized route alone (kit_app's api also has a signed-in route)
api = Api("bench-kit", title="Tracing's cost")
api.get("/bench/kit/{id}", summary="A product-sized answer")(kit_app.product_like)


# The traced stack's ports: beside the bench stack's (BENCH_PORT_BASE, 24000) and the
# test stack's (28000), below the ephemeral range.
TRACED_PORT_BASE = int(os.environ.get("BENCH_TRACED_PORT_BASE", "26000"))
INGRESS_SECONDS = 5
INGRESS_ROUNDS = 5
CONNECTIONS = 16
# Every request its own trace id and a traceparent whose sampled flag is set on 1 in
# `every` requests: the head decision the services' parent-based samplers follow. The
# untraced stack gets the same header (and ignores it), so both send the same bytes.
TRACEPARENT_LUA = (
    THREAD_IDS_LUA
    + """
local counter = 0
local function hex32() return string.format("%%08x", math.random(0, 0x7fffffff)) end
function init(args) math.randomseed(os.time() * 100 + tid) end
function request()
  counter = counter + 1
  local flag = (counter %% %(every)d == 0) and "01" or "00"
  wrk.headers["traceparent"] = "00-" .. hex32() .. hex32() .. hex32() .. hex32() .. "-"
    .. hex32() .. hex32() .. "-" .. flag
  return wrk.format()
end
"""
)
NEVER = 1 << 30  # a 1-in-`NEVER` flag: no request sampled within a run


def run(env: BenchEnv | None = None) -> str:
    sections = [in_process()]
    if env is not None:  # under `make bench`: the bench stack is the untraced one
        sections.insert(0, through_the_ingress(env))
    return "\n\n".join(sections)


@contextlib.contextmanager
def traced_stack(env: BenchEnv) -> Iterator[tuple[BenchEnv, str]]:
    """A second devstack beside `env`'s, the same values (AGORA_VALUES_EXTRA is
    inherited), every service exporting to its own receiver; wiped before, down after."""
    run_dir = Path(env.run_dir).resolve().with_name(Path(env.run_dir).name + "-traced")
    layout = Layout(
        run_dir=run_dir,
        ingress_port=TRACED_PORT_BASE + 80,
        port_base=TRACED_PORT_BASE,
        tracing_ratio=1.0,
        ready_timeout=float(os.environ.get("AGORA_READY_TIMEOUT", "300")),
    )
    stack.wipe(layout)
    try:
        stack.up(layout)
        assert layout.traces_url is not None
        yield BenchEnv(layout.ingress_url, layout.prometheus_url, str(run_dir)), layout.traces_url
    finally:
        stack.down(layout)


def through_the_ingress(env: BenchEnv) -> str:
    with traced_stack(env) as (traced, traces_url):
        products = {stack_env.agora_url: _product(stack_env) for stack_env in (env, traced)}
        cpu: dict[str, list[dict[str, float]]] = {}  # per case: ms per request by group

        def case(name: str, stack_env: BenchEnv, path: str, every: int, post: bool = False):
            product = products[stack_env.agora_url]
            lua = (POST_ORDER if post else "") + TRACEPARENT_LUA
            script = lua % {"product": product, "every": every}
            url = stack_env.agora_url + (path % {"product": product})

            def measure() -> Result:
                before = cpu_by_group(stack_env.run_dir)
                result = wrk(
                    name, url, seconds=INGRESS_SECONDS, connections=CONNECTIONS, lua=script
                )
                after = cpu_by_group(stack_env.run_dir)
                answered = max(1, result.requests or result.requests_per_s * INGRESS_SECONDS)
                used = {
                    group: (after[group] - before.get(group, 0.0)) / answered * 1000
                    for group in after
                    if group != "traces"  # the receiver stands in for a collector elsewhere
                }
                cpu.setdefault(name, []).append(used)
                return result

            return name, measure

        product_path, order_path = "/api/v1/products/%(product)d", "/api/v1/orders"
        cases = [
            case("GET product, off", env, product_path, NEVER),
            case("GET product, 0 %", traced, product_path, NEVER),
            case("GET product, 1 %", traced, product_path, 100),
            case("GET product, 100 %", traced, product_path, 1),
            case("POST order, off", env, order_path, NEVER, post=True),
            case("POST order, 0 %", traced, order_path, NEVER, post=True),
            case("POST order, 1 %", traced, order_path, 100, post=True),
            case("POST order, 100 %", traced, order_path, 1, post=True),
        ]
        wrk(
            "warm-up",
            traced.agora_url + product_path % {"product": products[traced.agora_url]},
            seconds=2,
            connections=CONNECTIONS,
        )
        results = interleaved(cases, rounds=INGRESS_ROUNDS, rotate=True)
        spans = httpx.get(f"{traces_url}/api/stats", timeout=10).json()["spans"]
    by_name = {result.name: result for result in results}
    lines = [
        "## Tracing through the ingress: off, 1 % and 100 % sampled",
        "",
        f"wrk -t2 -c{CONNECTIONS}, {INGRESS_ROUNDS} interleaved rounds (rotated) of "
        f"{INGRESS_SECONDS} s per case, medians. *off*: the bench stack (no OTLP endpoint); "
        "*0 %*, *1 %* and *100 %*: a second devstack of the same values beside it, every "
        "service exporting to devstack's receiver, the sampled flag of each request's "
        "traceparent set on none, 1 in 100 or all requests (0 % against off is the two "
        "stacks' own difference plus tracing's unsampled path; 1 % against 0 % is the "
        "sampling alone, on one stack). CPU ms/req: the stack's processes (ingress, "
        "services, PostgreSQL, Redis) per answered request, the receiver's own CPU left out.",
        "",
        "| case | req/s | vs off | p50 ms | p99 ms | CPU ms/req | CPU vs off | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = {
        name: statistics.median(sum(run.values()) for run in runs) for name, runs in cpu.items()
    }
    for result in results:
        base_name = result.name.split(",")[0] + ", off"
        base = by_name[base_name]
        cpu_ms, base_cpu = total[result.name], total[base_name]
        lines.append(
            f"| {result.name} | {result.requests_per_s:,.0f} | "
            f"{(result.requests_per_s / base.requests_per_s - 1) * 100:+.1f} % | "
            f"{result.p50_ms:.2f} | {result.p99_ms:.2f} | {cpu_ms:.2f} | "
            f"{(cpu_ms / base_cpu - 1) * 100:+.1f} % | {result.errors} |"
        )
    lines += ["", f"Spans the traced stack's receiver got in all: {spans:,}.", ""]
    lines += _groups_table(cpu)
    return "\n".join(lines)


def _groups_table(cpu: dict[str, list[dict[str, float]]]) -> list[str]:
    """Where the CPU went: ms per request of each process group (median over rounds)."""
    medians = {
        name: {
            group: statistics.median(run.get(group, 0.0) for run in runs)
            for group in {g for run in runs for g in run}
        }
        for name, runs in cpu.items()
    }
    groups = sorted(
        {g for case in medians.values() for g, ms in case.items() if ms >= 0.005},
        key=lambda g: -max(case.get(g, 0.0) for case in medians.values()),
    )
    lines = [
        "CPU ms per request by process group (each direct child of the stack's supervisord"
        " with its descendants; median over the rounds; groups under 0.005 ms left out):",
        "",
        "| case | " + " | ".join(groups) + " |",
        "|---|" + "---:|" * len(groups),
    ]
    for name, case in medians.items():
        lines.append(f"| {name} | " + " | ".join(f"{case.get(g, 0.0):.3f}" for g in groups) + " |")
    return lines


def _product(env: BenchEnv) -> int:
    answer = httpx.post(
        f"{env.agora_url}/api/v1/products",
        json={"name": "tracing bench", "price": "1.00", "quantity": 10_000_000},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["id"]


def in_process() -> str:
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "devstack.traces", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/api/traces"), timeout=30, what="the trace receiver")
        micro, exported = asyncio.run(per_request_microseconds(f"{url}/v1/traces"))
        with postgres.temporary_server(free_port()) as server:
            dsn = asyncio.run(postgres.ensure_database(server, "catalog", "bench-pw"))
            catalog = asyncio.run(catalog_cpu_microseconds(dsn, f"{url}/v1/traces"))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    off = micro[OFF]
    lines = [
        "## Tracing: the kit's cost per request, off, on at ratio 0 and at ratio 1",
        "",
        f"In-process, per request (aiohttp's handling from routing to the response object, "
        f"no network), the kit's product-sized route; median of {ROUNDS} interleaved rounds "
        f"x {REQUESTS:,} requests per case. Ratio 1 exports every span (BatchSpanProcessor, "
        "OTLP/HTTP protobuf) to devstack's receiver in another process, timed until the "
        f"exporter has sent them (a flush every {EXPORT_CHUNK:,} requests): its export "
        "thread shares the worker's interpreter, and its cost is in the figure.",
        "",
        "| case | us per request | vs off |",
        "|---|---:|---:|",
    ]
    for name in CASES:
        lines.append(f"| {name} | {micro[name]:.1f} | {(micro[name] / off - 1) * 100:+.1f} % |")
    lines += [
        "",
        f"Spans the receiver got from the ratio-1 case: {exported:,} "
        f"(of {ROUNDS * REQUESTS:,} requests).",
    ]
    lines += [
        "",
        "### catalog's GET product in-process, by sampling",
        "",
        "catalog's own app (services/catalog) on a temporary PostgreSQL, its GET product "
        "route in-process (one SQL query), this process's CPU time per request "
        "(`time.process_time`: the worker's share only, PostgreSQL's left out; the export "
        f"thread's in), {CATALOG_ROUNDS} interleaved rounds x {CATALOG_REQUESTS:,} requests, "
        "medians. Every request carries a traceparent, sampled on none, 1 in 100 or all "
        "(as the ingress passes it on); *off* has no OTLP endpoint.",
        "",
        "| case | CPU us per request | vs off |",
        "|---|---:|---:|",
    ]
    base = catalog[CATALOG_CASES[0][0]]
    for name, _ in CATALOG_CASES:
        lines.append(
            f"| {name} | {catalog[name]:.1f} | {(catalog[name] / base - 1) * 100:+.1f} % |"
        )
    return "\n".join(lines)


CATALOG_ROUNDS = 7
CATALOG_REQUESTS = 2_000
CATALOG_CASES = (("off", 0), ("on, 0 %", 0), ("on, 1 %", 100), ("on, 100 %", 1))


async def catalog_cpu_microseconds(dsn: str, endpoint: str) -> dict[str, float]:
    """catalog's GET product: CPU us per request off and on at each sampling share."""
    from services.catalog.store import numeric_as_text
    from services.catalog.views import api as catalog_api

    await migrate(dsn, "catalog")
    settings = KitSettings(service_name="catalog", database_url=dsn)
    provider = _provider("1", endpoint)  # the parent's flag decides
    off = create_app(settings, catalog_api, postgres=True, postgres_init=numeric_as_text)
    on = create_app(
        settings,
        catalog_api,
        postgres=True,
        postgres_init=numeric_as_text,
        tracer_provider=provider,
    )
    devnull = os.open(os.devnull, os.O_WRONLY)
    for app in (off, on):
        app[ACCESS_LOG].fd = devnull
        app.freeze()
        await app.startup()
    product = await off[DB_POOL].fetchval(
        "INSERT INTO products (name, price, quantity) VALUES ('bench', 1, 5) RETURNING id"
    )
    path = f"/api/v1/products/{product}"
    timings: dict[str, list[float]] = {name: [] for name, _ in CATALOG_CASES}
    for _ in range(CATALOG_ROUNDS):
        for name, every in CATALOG_CASES:
            app = off if name == "off" else on
            made = [
                mocked_requests(app, path, 1, _traceparent(n, every))[0]
                for n in range(CATALOG_REQUESTS)
            ]
            gc.collect()
            started = time.process_time()
            # every span exported before the clock stops: 100 % in chunks the queue holds,
            # 1 % in one export at the end (a worker at 1 % exports every few seconds)
            chunk_size = EXPORT_CHUNK if every == 1 else len(made)
            for chunk in range(0, len(made), chunk_size):
                await _time(app, made[chunk : chunk + chunk_size])
                if every:
                    await asyncio.to_thread(provider.force_flush)
            timings[name].append((time.process_time() - started) / len(made) * 1e6)
    for app in (off, on):
        await app.cleanup()
    os.close(devnull)
    return {name: statistics.median(values) for name, values in timings.items()}


def _traceparent(n: int, every: int) -> dict[str, str]:
    flag = "01" if every and n % every == 0 else "00"
    return {"traceparent": f"00-{n + 1:032x}-{n + 1:016x}-{flag}"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _provider(ratio: str, endpoint: str) -> Any:
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": ratio,
    }
    old = {key: os.environ.get(key) for key in environ}
    os.environ.update(environ)  # the OTLP exporter reads its endpoint from the environment
    try:
        return tracing.provider_for("bench-kit", environ=environ)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def per_request_microseconds(endpoint: str) -> tuple[dict[str, float], int]:
    settings = KitSettings(service_name="bench-kit")
    providers = {RATIO_0: _provider("0", endpoint), RATIO_1: _provider("1", endpoint)}
    apps = {
        OFF: create_app(settings, api),
        RATIO_0: create_app(settings, api, tracer_provider=providers[RATIO_0]),
        RATIO_1: create_app(settings, api, tracer_provider=providers[RATIO_1]),
    }
    devnull = os.open(os.devnull, os.O_WRONLY)
    for app in apps.values():
        app[ACCESS_LOG].fd = devnull
        app.freeze()
        await app.startup()
    apps[UNSAMPLED] = apps[RATIO_1]  # a ratio of 1, yet nothing recorded: the caller said no
    requests = {
        name: mocked_requests(
            app, "/bench/kit/1", REQUESTS, UNSAMPLED_TRACEPARENT if name == UNSAMPLED else None
        )
        for name, app in apps.items()
    }
    gc.collect()
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name in CASES:
            app, made = apps[name], requests[name]
            if name == RATIO_1:
                timings[name].append(await _time_exported(app, made, providers[name]))
            else:
                timings[name].append(await _time(app, made))
    for app in {id(app): app for app in apps.values()}.values():
        await app.cleanup()  # the ratio-1 provider exports what it still holds
    os.close(devnull)
    exported = _count_spans(endpoint)
    return {name: statistics.median(values) for name, values in timings.items()}, exported


async def _time_exported(app: Any, requests: list[Any], provider: Any) -> float:
    """Like bench.kit._time, and until every span of these requests has been exported:
    in chunks that the batch processor's queue (2048) holds, so none is dropped unpaid,
    and none is left to be encoded while the next case is timed."""
    started = time.perf_counter()
    for chunk in range(0, len(requests), EXPORT_CHUNK):
        await _time(app, requests[chunk : chunk + EXPORT_CHUNK])
        await asyncio.to_thread(provider.force_flush)
    return (time.perf_counter() - started) / len(requests) * 1e6


def _count_spans(endpoint: str) -> int:
    answer = httpx.get(endpoint.replace("/v1/traces", "/api/stats"), timeout=10)
    return answer.json()["spans"]


if __name__ == "__main__":  # the in-process part alone, no devstack needed
    print(in_process())

"""Tracing's cost per request (services/kit/tracing.py): the kit's product-sized route
with tracing off (no endpoint: no span wrapper at all), on at ratio 0 (every request
gets a non-recording span and its ids, nothing is exported) and on at ratio 1 (every
request recorded and exported over OTLP/HTTP to devstack's receiver, in a process of its
own), in-process like bench/kit.py's per-request figures, interleaved rounds in one run.

A route that calls another service or PostgreSQL pays more when recorded (a client span
per call, a span per query); the cases here are the kit's fixed cost per request.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
from typing import Any

import httpx

from services.kit import tracing
from services.kit.api import Api
from services.kit.app import create_app
from services.kit.config import KitSettings
from services.kit.keys import ACCESS_LOG
from tests.conftest import free_port, wait_until

from . import kit_app
from .common import BenchEnv
from .kit import _time, mocked_requests

ROUNDS = 7
REQUESTS = 5_000  # per round and case
OFF = "tracing off (no endpoint)"
RATIO_0 = "on, ratio 0 (nothing sampled)"
RATIO_1 = "on, ratio 1 (every request exported)"
CASES = (OFF, RATIO_0, RATIO_1)
# bench/kit.py's product-sized route alone (kit_app's api also has a signed-in route)
api = Api("bench-kit", title="Tracing's cost")
api.get("/bench/kit/{id}", summary="A product-sized answer")(kit_app.product_like)


def run(env: BenchEnv | None = None) -> str:
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
        "OTLP/HTTP protobuf) to devstack's receiver in another process; its export thread "
        "shares the worker's interpreter, and its cost is in the figure.",
        "",
        "| case | us per request | vs off |",
        "|---|---:|---:|",
    ]
    for name in CASES:
        lines.append(f"| {name} | {micro[name]:.1f} | {(micro[name] / off - 1) * 100:+.1f} % |")
    lines += [
        "",
        f"Spans the receiver got from the ratio-1 case: {exported:,} "
        f"(of {ROUNDS * REQUESTS:,} requests; the batch processor drops what its queue of "
        "2048 cannot hold when the exporter falls behind).",
    ]
    return "\n".join(lines)


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
    requests = {name: mocked_requests(app, "/bench/kit/1", REQUESTS) for name, app in apps.items()}
    gc.collect()
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name in CASES:
            timings[name].append(await _time(apps[name], requests[name]))
    for app in apps.values():
        await app.cleanup()  # the ratio-1 provider exports what it still holds
    os.close(devnull)
    exported = _count_spans(endpoint)
    return {name: statistics.median(values) for name, values in timings.items()}, exported


def _count_spans(endpoint: str) -> int:
    answer = httpx.get(endpoint.replace("/v1/traces", "/api/stats"), timeout=10)
    return answer.json()["spans"]


if __name__ == "__main__":  # alone, no devstack needed: python -m bench.tracing
    print(run())

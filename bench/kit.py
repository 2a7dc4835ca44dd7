"""The kit's cost: a bare aiohttp handler, the same handler in the kit (with and without
the access log), and catalog's GET /api/v1/products/{id} (kit + PostgreSQL), all through
the ingress, interleaved in one run; plus the same handlers timed in-process, where
the network and nginx do not blur a few microseconds."""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time

import uvloop
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from services.kit.keys import ACCESS_LOG

from . import bare_app, kit_app
from .common import BenchEnv, interleaved, table, wrk

SECONDS = 6
ROUNDS = 5
REQUESTS = 5_000  # per in-process round (mocked requests are slow to make)
BARE = "bare aiohttp handler"
BARE_AGAIN = "bare aiohttp handler, again (the noise floor)"
KIT = "same handler in the kit"
QUIET = "in the kit, access log errors only"


def run(env: BenchEnv) -> str:
    url = env.agora_url
    cases = [
        (BARE, f"{url}/bench/bare/1"),
        (KIT, f"{url}/bench/kit/1"),
        (QUIET, f"{url}/bench/kit-quiet/1"),
        ("GET /api/v1/products/{id}", f"{url}/api/v1/products/1"),
        (BARE_AGAIN, f"{url}/bench/bare/2"),
    ]
    results = interleaved(
        [(name, lambda u=target, n=name: wrk(n, u, seconds=SECONDS)) for name, target in cases],
        rounds=ROUNDS,
    )
    rate = {r.name: r.requests_per_s for r in results}
    micro = uvloop.run(per_request_microseconds())
    return "\n".join(
        [
            "## Kit: instrumentation cost and GET /api/v1/products/{id}",
            "",
            f"wrk -t2 -c32, {SECONDS} s per case, {ROUNDS} interleaved rounds, medians; "
            "every case through the ingress (nginx) to 2 replicas x 2 gunicorn workers.",
            "",
            table(results, baseline=BARE),
            "",
            f"Instrumentation (request id, deadline, error shape, RED metrics, access log): "
            f"{(1 - rate[KIT] / rate[BARE]) * 100:.1f} % of throughput; "
            f"without the per-request access line: {(1 - rate[QUIET] / rate[BARE]) * 100:.1f} %. "
            f"Noise floor (the same bare case twice): "
            f"{abs(1 - rate[BARE_AGAIN] / rate[BARE]) * 100:.1f} %.",
            "",
            "In-process, per request (aiohttp's request handling from routing to the response "
            f"object, no network; median of {ROUNDS} x {REQUESTS:,}): bare {micro[BARE]:.1f} us, "
            f"in the kit {micro[KIT]:.1f} us (+{micro[KIT] - micro[BARE]:.1f}), "
            f"without the access line {micro[QUIET]:.1f} us (+{micro[QUIET] - micro[BARE]:.1f}).",
        ]
    )


async def per_request_microseconds() -> dict[str, float]:
    apps = {
        BARE: (bare_app.create_app(), "/bench/bare/1"),
        KIT: (kit_app.create_app(kit_app.bench_settings()), "/bench/kit/1"),
        QUIET: (
            kit_app.create_app(kit_app.bench_settings(access_log_sample=0.0)),
            "/bench/kit/1",
        ),
    }
    apps[KIT][0][ACCESS_LOG].fd = os.open(os.devnull, os.O_WRONLY)
    for app, _ in apps.values():
        app.freeze()
        await app.startup()
    # Made once per app and reused every round.
    requests = {name: mocked_requests(app, path, REQUESTS) for name, (app, path) in apps.items()}
    gc.collect()
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name, (app, _path) in apps.items():
            timings[name].append(await _time(app, requests[name]))
    for app, _ in apps.values():
        await app.cleanup()
    return {name: statistics.median(values) for name, values in timings.items()}


def mocked_requests(
    app: web.Application, path: str, count: int, headers: dict[str, str] | None = None
) -> list[web.Request]:
    """`count` GET requests of `path` for timing `app._handle` in-process."""
    made = [make_mocked_request("GET", path, headers=headers, app=app) for _ in range(count)]
    for request in made:
        # A real request's task is the one handling it (a mock here): the kit takes the
        # event loop from it.
        request._task = asyncio.current_task()
    return made


async def _time(app: web.Application, requests: list[web.Request]) -> float:
    started = time.perf_counter()
    for request in requests:
        await app._handle(request)  # what the server calls per request
    return (time.perf_counter() - started) / len(requests) * 1e6


if __name__ == "__main__":  # the in-process part alone: python -m bench.kit
    print(asyncio.run(per_request_microseconds()))

"""Where a request's work goes, in instructions: `python -m bench.callgrind`.

Wall time on a shared 2-core machine moves by tens of percent from one minute to the
next; the instructions a process executes for the same requests do not (within about
1 %). This runs one worker the way gunicorn's uvloop worker does (an AppRunner on uvloop)
under valgrind's callgrind, with catalog's app and the same handlers mounted several
ways, against a throwaway PostgreSQL holding catalog's schema and 45 products, and
counts the instructions per request of each path:

    aiohttp floor          a constant answer, no JSON, no kit
    no-op, bare / in kit   bench's product-sized JSON (bench/payload.py)
    ... in kit, no access line, no metrics ...   the kit with one piece left out
    GET product, the plain aiohttp way   asyncpg's pool as it comes (its reset query on
                           every release), Decimal prices, orjson with a default
    GET product, bare / in kit   catalog's handler, catalog's pool
    the list of 20, plain / in kit

Differences between paths are what each piece costs. Only the server process is
counted: PostgreSQL's share is reported separately, as its backends' CPU time. Timers
(the deadline sweep, the flushes) and the kernel's share make these counts move by a
few percent from run to run; `--wrapper` counts the kit's wrapper alone, exactly: the
same mocked request handed to aiohttp's `Application._handle` N times in a process
that does nothing else (no I/O, no timer runs), for two N, the difference divided.

    python -m bench.callgrind [--requests N] [--concurrency C]   (needs valgrind)
    python -m bench.callgrind --wrapper
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PATHS = {  # name -> path served by serve() below
    "aiohttp floor (constant bytes, no kit)": "/floor",
    "no-op JSON, bare aiohttp": "/bare/noop/1",
    "no-op JSON in the kit": "/bench/noop/1",
    "no-op in the kit, no access line": "/quiet/noop/1",
    "no-op in the kit, no metrics": "/nometrics/noop/1",
    "no-op in the kit, no deadline": "/nodeadline/noop/1",
    "GET product, plain aiohttp + asyncpg (peer)": "/plain/products/1",
    "GET product, catalog handler, asyncpg's reset on release": "/reset/products/1",
    "GET product, catalog handler, Decimal prices": "/decimal/products/1",
    "GET product, catalog handler, bare": "/bare/products/1",
    "GET product, catalog in the kit": "/api/v1/products/1",
    "list of 20, plain aiohttp + asyncpg (peer)": "/plain/products?limit=20",
    "list of 20, catalog handler, page and total in two statements": "/two/products",
    "list of 20, catalog handler, bare": "/bare/products",
    "list of 20, catalog in the kit": "/api/v1/products?limit=20",
}


# ---------------------------------------------------------------- the server (under valgrind)


def build_app(dsn: str) -> object:
    """catalog's app plus the comparison routes; the plain pool is asyncpg's default."""
    import asyncpg
    from aiohttp import web

    from bench.kit_app import product_like
    from bench.peers import aiohttp_app as peer
    from services.catalog import store, views
    from services.catalog.app import create_app
    from services.kit.api import json_response, page, path_id
    from services.kit.config import KitSettings
    from services.kit.db import keep_session
    from services.kit.instrument import Instrumentation
    from services.kit.keys import ACCESS_LOG, DB_POOL, INSTRUMENTATION
    from services.kit.logs import AccessLog

    settings = KitSettings(service_name="catalog", database_url=dsn)
    app = create_app(settings)
    kit = app[INSTRUMENTATION]
    access_log = app[ACCESS_LOG]
    access_log.fd = os.open(os.devnull, os.O_WRONLY)  # the cost of writing stays in
    quiet = Instrumentation(
        kit.metrics,
        AccessLog("catalog", sample=0.0),
        kit.readiness,
        kit.deadlines,
        request_timeout=settings.request_timeout,
        max_body_bytes=settings.max_body_bytes,
    )

    class NoMetrics:
        in_flight = bytes_in = bytes_out = 0

        def observe(self, *args: object) -> None:
            pass

    no_metrics = Instrumentation(
        NoMetrics(),  # type: ignore[arg-type]
        access_log,
        kit.readiness,
        kit.deadlines,
        request_timeout=settings.request_timeout,
        max_body_bytes=settings.max_body_bytes,
    )
    floor_body = b"{}"

    async def floor(request: web.Request) -> web.Response:
        return web.Response(body=floor_body, content_type="application/json")

    pools: dict[str, asyncpg.Pool] = {}

    def product_from(pool_name: str) -> web.Handler:
        async def get_product(request: web.Request) -> web.Response:  # views.get_product's
            product_id = path_id(request)
            product = await store.get_product(pools[pool_name], product_id)
            if product is None:
                raise web.HTTPNotFound()
            return json_response(product)

        return get_product

    async def list_in_two_statements(request: web.Request) -> web.Response:  # before
        async with app[DB_POOL].acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {store.PRODUCT_COLUMNS} FROM products"
                " WHERE ($1::bigint IS NULL OR brand_id = $1) ORDER BY id LIMIT $2 OFFSET $3",
                None,
                20,
                0,
            )
            total = await conn.fetchval(
                "SELECT count(*) FROM products WHERE ($1::bigint IS NULL OR brand_id = $1)", None
            )
        return page([dict(row) for row in rows], total)

    async def list_bare(request: web.Request) -> web.Response:
        items, total = await store.list_products(app[DB_POOL], 20, 0, None)
        return page(items, total)

    kit.add(app, "GET", "/bench/noop/{id}", product_like)
    kit.add(app, "GET", "/nodeadline/noop/{id}", product_like, timeout=None)
    quiet.add(app, "GET", "/quiet/noop/{id}", product_like)
    no_metrics.add(app, "GET", "/nometrics/noop/{id}", product_like)
    app.router.add_get("/floor", floor)
    app.router.add_get("/bare/noop/{id}", product_like)
    app.router.add_get("/bare/products/{id}", views.get_product)
    app.router.add_get("/bare/products", list_bare)
    app.router.add_get("/two/products", list_in_two_statements)
    app.router.add_get("/reset/products/{id}", product_from("reset"))
    app.router.add_get("/decimal/products/{id}", product_from("decimal"))
    app.router.add_get("/plain/products/{id}", peer.get_product)
    app.router.add_get("/plain/products", peer.list_products)

    async def plain_pool(app: web.Application) -> AsyncIterator[None]:
        app[peer.POOL] = await asyncpg.create_pool(dsn, min_size=1, max_size=5)
        # catalog's pool with one change each: asyncpg's reset query; Decimal prices
        sizes = {"min_size": 1, "max_size": 5}
        pools["reset"] = await asyncpg.create_pool(dsn, init=store.numeric_as_text, **sizes)
        pools["decimal"] = await asyncpg.create_pool(dsn, reset=keep_session, **sizes)
        yield
        for pool in (app[peer.POOL], *pools.values()):
            await pool.close()

    app.cleanup_ctx.append(plain_pool)
    return app


def serve(port: int, dsn: str) -> None:
    import uvloop
    from aiohttp import web

    async def main() -> None:
        runner = web.AppRunner(build_app(dsn), access_log=None, handle_signals=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        # Everything made so far (modules, the app) out of the collector's sight: a full
        # collection over it would land in some paths' counts and not others'.
        gc.collect()
        gc.freeze()
        await asyncio.Event().wait()

    uvloop.run(main())


# ---------------------------------------------------------------- the driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def prepare_database(dsn: str) -> None:
    import asyncpg

    from services.kit.migrate import migrate

    await migrate(dsn, "catalog", seed=True)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO products (name, price, quantity)"
            " SELECT 'Item ' || n, n + 0.99, n FROM generate_series(1, 40) AS n"
        )
    finally:
        await conn.close()


async def load(base: str, path: str, requests: int, concurrency: int) -> None:
    import aiohttp

    todo = iter(range(requests))
    async with aiohttp.ClientSession(base) as session:

        async def worker() -> None:
            for _ in todo:
                async with session.get(path) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"{path}: {resp.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def backend_ticks(pid: int) -> int:
    total = 0
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (child / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += int(fields[11]) + int(fields[12])
    return total


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def totals(path: str) -> int:
    text = Path(path).read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if not match:
        raise SystemExit(f"no totals in {path}")
    return int(match.group(1))


def drive(requests: int, concurrency: int) -> str:
    from devstack import postgres

    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    out_dir = Path(tempfile.mkdtemp(prefix="agora-callgrind-"))
    pg_port, port = free_port(), free_port()
    with postgres.temporary_server(pg_port) as server:
        dsn = asyncio.run(postgres.ensure_database(server, "catalog", "bench-pw"))
        asyncio.run(prepare_database(dsn))
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out_dir}/callgrind.out.%p",
            sys.executable,
            "-m",
            "bench.callgrind",
            "--serve",
            str(port),
            dsn,
        ]
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env["PYTHONPATH"] = str(REPO)
        proc = subprocess.Popen(command, cwd=out_dir, env=env, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc)
            pid = str(proc.pid)
            control("-i", "on", pid)
            rows = []
            for name, path in PATHS.items():
                asyncio.run(load(base, path, 200, concurrency))  # warm: caches, statements
                control("-z", pid)
                pg_before = backend_ticks(server_pid(pg_port))
                asyncio.run(load(base, path, requests, concurrency))
                pg_used = backend_ticks(server_pid(pg_port)) - pg_before
                before = set(glob.glob(f"{out_dir}/callgrind.out.*"))
                control("-d", pid)
                dump = wait_dump(out_dir, before)
                rows.append((name, totals(dump) / requests, pg_used))
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            if proc.poll() is None:
                proc.kill()
    shutil.rmtree(out_dir, ignore_errors=True)
    return report(rows, requests, concurrency)


def server_pid(port: int) -> int:
    """The postmaster of the throwaway server (its backends are its children)."""
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (child / "cmdline").read_bytes().split(b"\0")
            if cmdline and cmdline[0].endswith(b"/postgres") and str(port).encode() in cmdline:
                return int(child.name)
    raise SystemExit("PostgreSQL's postmaster not found")


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 600  # imports under valgrind are slow
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server under valgrind exited")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/floor", timeout=30).status_code == 200:
                return
        time.sleep(1)
    raise SystemExit("the server under valgrind did not start")


def wait_dump(out_dir: Path, before: set[str]) -> str:
    for _ in range(600):
        new = set(glob.glob(f"{out_dir}/callgrind.out.*")) - before
        if new:
            time.sleep(0.5)  # let it finish writing
            return sorted(new)[-1]
        time.sleep(0.1)
    raise SystemExit("callgrind wrote no dump")


def report(rows: list[tuple[str, float, int]], requests: int, concurrency: int) -> str:
    hz = os.sysconf("SC_CLK_TCK")
    lines = [
        f"Instructions per request of one worker process (callgrind, {requests} requests per "
        f"path, {concurrency} at a time; PostgreSQL's backends' CPU beside it, in ms for "
        "all of them, coarse: clock ticks):",
        "",
        "| path | instructions / request | PostgreSQL CPU ms |",
        "|---|---:|---:|",
    ]
    for name, instructions, pg_ticks in rows:
        lines.append(f"| {name} | {instructions:,.0f} | {pg_ticks * 1000 / hz:.0f} |")
    return "\n".join(lines)


WRAPPER_VARIANTS = {
    "bare aiohttp handler": "bare",
    "the same handler in the kit": "kit",
    "in the kit, no access line": "quiet",
    # tracing (services/kit/tracing.py): on, the caller's traceparent unsampled (99 of 100
    # requests at 1 %), or sampled, its span encoded as OTLP protobuf (not sent: the
    # exporter's HTTP post is left out)
    "in the kit, tracing on, caller unsampled": "unsampled",
    "in the kit, tracing on, caller sampled": "sampled",
}
TRACEPARENTS = {
    "unsampled": f"00-{'4b' * 16}-{'a7' * 8}-00",
    "sampled": f"00-{'4b' * 16}-{'a7' * 8}-01",
}


def in_process(variant: str, requests: int) -> None:
    """Under valgrind: one mocked request through aiohttp's dispatch, `requests` times."""
    import uvloop
    from aiohttp.test_utils import make_mocked_request
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from bench import bare_app, kit_app
    from services.kit import tracing
    from services.kit.api import Api
    from services.kit.app import create_app
    from services.kit.config import KitSettings
    from services.kit.keys import ACCESS_LOG

    class EncodingExporter(SpanExporter):
        """Encodes each span as the OTLP exporter would, sends nothing."""

        def export(self, spans: object) -> SpanExportResult:
            encode_spans(spans).SerializeToString()
            return SpanExportResult.SUCCESS

    async def run() -> None:
        headers = {"traceparent": TRACEPARENTS[variant]} if variant in TRACEPARENTS else None
        if variant == "bare":
            app, path = bare_app.create_app(), "/bench/bare/1"
        else:
            # kit_app's product-sized route alone (its api also has a signed-in route,
            # which needs AUTH_PUBLIC_KEY_FILE)
            api = Api("bench-kit", title="The kit's wrapper")
            api.get("/bench/kit/{id}", summary="A product-sized answer")(kit_app.product_like)
            sample = 0.0 if variant == "quiet" else 1.0
            settings = KitSettings(service_name="bench-kit", access_log_sample=sample)
            provider = (
                tracing.provider_for("bench-kit", exporter=EncodingExporter(), environ={})
                if headers
                else None
            )
            app, path = create_app(settings, api, tracer_provider=provider), "/bench/kit/1"
            app[ACCESS_LOG].fd = os.open(os.devnull, os.O_WRONLY)
        app.freeze()
        await app.startup()
        request = make_mocked_request("GET", path, headers=headers, app=app)
        # A real request's task is the one handling it (a mock here): the kit takes the
        # event loop from it.
        request._task = asyncio.current_task()
        for _ in range(requests):
            await app._handle(request)  # no await inside yields: no timer ever runs

    uvloop.run(run())


def wrapper_counts(low: int = 2000, high: int = 12000) -> str:
    out_dir = Path(tempfile.mkdtemp(prefix="agora-callgrind-"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    counts: dict[str, float] = {}
    for name, variant in WRAPPER_VARIANTS.items():
        total = {}
        for n in (low, high):
            out = out_dir / f"{variant}-{n}.out"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            command += [sys.executable, "-m", "bench.callgrind", "--in-process", variant, str(n)]
            subprocess.run(command, check=True, env=env, capture_output=True)
            total[n] = totals(str(out))
        counts[name] = (total[high] - total[low]) / (high - low)
    shutil.rmtree(out_dir, ignore_errors=True)
    bare = counts["bare aiohttp handler"]
    lines = [
        "The kit's wrapper, in-process (aiohttp's dispatch of one mocked request, "
        f"{high - low:,} requests counted):",
        "",
        "| case | instructions / request | added by the kit |",
        "|---|---:|---:|",
    ]
    for name, count in counts.items():
        lines.append(f"| {name} | {count:,.0f} | {count - bare:+,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--wrapper", action="store_true", help="count the kit's wrapper alone")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DSN"), help=argparse.SUPPRESS)
    parser.add_argument("--in-process", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
    elif args.in_process:
        in_process(args.in_process[0], int(args.in_process[1]))
    elif args.wrapper:
        print(wrapper_counts())
    else:
        print(drive(args.requests, args.concurrency))


if __name__ == "__main__":
    main()

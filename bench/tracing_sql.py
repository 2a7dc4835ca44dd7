"""One-off, not part of `make bench`: the cost of a recorded span per asyncpg query, the
kit's query logger (services/kit/tracing.py) against opentelemetry-instrumentation-asyncpg,
which is not a dependency: install it apart first,

    .venv/bin/pip install --no-deps --target /tmp/otel-contrib \
        opentelemetry-instrumentation-asyncpg==0.66b1 opentelemetry-instrumentation==0.66b1 wrapt
    .venv/bin/python -m bench.tracing_sql /tmp/otel-contrib

`SELECT 1` on one connection of a temporary PostgreSQL, under a recording parent span,
interleaved rounds, medians (us per query)."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import asyncpg
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack import postgres
from services.kit import tracing
from tests.conftest import free_port

N, ROUNDS = 2000, 5


async def timed(conn: asyncpg.Connection, tracer) -> float:
    started = time.perf_counter()
    with tracer.start_as_current_span("request"):
        for _ in range(N):
            await conn.fetchval("SELECT 1")
    await asyncio.sleep(0)  # the query logger's last call_soon
    return (time.perf_counter() - started) / N * 1e6


async def compare(dsn: str) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    plain = await asyncpg.connect(dsn, ssl=False)
    own = await asyncpg.connect(dsn, ssl=False)
    own.add_query_logger(tracing.query_logger(tracer))
    results: dict[str, list[float]] = {
        "no span": [],
        "kit query logger": [],
        "opentelemetry-instrumentation-asyncpg": [],
    }
    for _ in range(ROUNDS):
        results["no span"].append(await timed(plain, tracer))
        results["kit query logger"].append(await timed(own, tracer))
        AsyncPGInstrumentor().instrument(tracer_provider=provider)
        results["opentelemetry-instrumentation-asyncpg"].append(await timed(plain, tracer))
        AsyncPGInstrumentor().uninstrument()
        exporter.clear()
    await plain.close()
    await own.close()
    base = statistics.median(results["no span"])
    print("| case | us per query | span's cost |\n|---|---:|---:|")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | +{median - base:.1f} |")


def main() -> None:
    sys.path.append(sys.argv[1] if len(sys.argv) > 1 else "/tmp/otel-contrib")
    with postgres.temporary_server(free_port()) as server:
        dsn = asyncio.run(postgres.ensure_database(server, "bench", "bench-pw"))
        asyncio.run(compare(dsn))


if __name__ == "__main__":
    main()

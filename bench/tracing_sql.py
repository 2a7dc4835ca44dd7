"""One-off, not part of `make bench`: the cost of a span per asyncpg query, recorded and
not, the kit's connection class (services/kit/tracing.py) against
opentelemetry-instrumentation-asyncpg, which is not a dependency: install it apart first,

    .venv/bin/pip install --no-deps --target /tmp/otel-contrib \
        opentelemetry-instrumentation-asyncpg==0.66b1 opentelemetry-instrumentation==0.66b1 wrapt
    .venv/bin/python -m bench.tracing_sql /tmp/otel-contrib

`SELECT 1` on one connection of a temporary PostgreSQL, under a recording parent span or
an unsampled one (what 99 of 100 requests are at 1 %), interleaved rounds, medians (us
per query)."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack import postgres
from services.kit import tracing
from tests.conftest import free_port

N, ROUNDS = 2000, 5


async def timed(conn: asyncpg.Connection, parent: Any) -> float:
    started = time.perf_counter()
    with parent():
        for _ in range(N):
            await conn.fetchval("SELECT 1")
    return (time.perf_counter() - started) / N * 1e6


async def compare(dsn: str) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(0x4B << 64, 0xA7, is_remote=True, trace_flags=trace.TraceFlags(0))
    )
    parents = {
        "recorded": lambda: tracer.start_as_current_span("request"),
        "unsampled": lambda: trace.use_span(unsampled),
    }
    plain = await asyncpg.connect(dsn, ssl=False)
    own = await asyncpg.connect(dsn, ssl=False, connection_class=tracing.connection_class(tracer))
    results: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for kind, parent in parents.items():
            results.setdefault(f"no span, {kind} parent", []).append(await timed(plain, parent))
            results.setdefault(f"kit connection class, {kind}", []).append(await timed(own, parent))
            AsyncPGInstrumentor().instrument(tracer_provider=provider)
            results.setdefault(f"opentelemetry-instrumentation-asyncpg, {kind}", []).append(
                await timed(plain, parent)
            )
            AsyncPGInstrumentor().uninstrument()
        exporter.clear()
    await plain.close()
    await own.close()
    print("| case | us per query | vs no span |\n|---|---:|---:|")
    for name, values in results.items():
        base = statistics.median(results[f"no span, {name.rsplit(', ', 1)[1].split()[0]} parent"])
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {median - base:+.1f} |")


def main() -> None:
    sys.path.append(sys.argv[1] if len(sys.argv) > 1 else "/tmp/otel-contrib")
    with postgres.temporary_server(free_port()) as server:
        dsn = asyncio.run(postgres.ensure_database(server, "bench", "bench-pw"))
        asyncio.run(compare(dsn))


if __name__ == "__main__":
    main()

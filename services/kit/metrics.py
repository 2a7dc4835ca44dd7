"""RED metrics per route template, cheap on the hot path, correct with many workers.

Under gunicorn every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multiprocess mode) and whichever worker is scraped reads them all.
A multiprocess update costs about 2.5x a plain one and `.labels()` costs more than the
update (DESIGN.md 9), so a request only bumps plain Python numbers in a per-route record;
`flush()` moves them into the prometheus children once a second, before every scrape
and at shutdown. A scrape therefore sees another worker's requests at most one flush
period late; counts are never lost.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.aiohttp import make_aiohttp_handler

from .config import MULTIPROC_ENV

LABELS = ("service", "method", "route", "status")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UPPER_BOUNDS = (*BUCKETS, float("inf"))

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered.", LABELS)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request.", LABELS, buckets=BUCKETS
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being handled now.",
    ("service",),
    multiprocess_mode="livesum",
)
HTTP_CONNECTIONS = Gauge(
    "http_connections_open",
    "TCP connections open to the service's workers (idle keep-alive ones included).",
    ("service",),
    multiprocess_mode="livesum",
)
# Bodies only, not headers: what a service moves, per service (a request's
# Content-Length, an answer's body; a streamed answer counts 0).
HTTP_REQUEST_BYTES = Counter(
    "http_request_body_bytes", "Bytes of request bodies received.", ("service",)
)
HTTP_RESPONSE_BYTES = Counter(
    "http_response_body_bytes", "Bytes of response bodies sent.", ("service",)
)


# prometheus-client's process collector sees only the scraped worker; these cover all.
WORKER_MEMORY = Gauge(
    "agora_worker_resident_memory_bytes",
    "Resident memory of the service's worker processes.",
    ("service",),
    multiprocess_mode="livesum",
)
WORKER_CPU = Counter(
    "agora_worker_cpu_seconds", "CPU time used by the service's worker processes.", ("service",)
)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def reset_multiprocess_dir(path: str | Path) -> None:
    """Start without old sample files: those of dead workers only slow scrapes down."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.glob("*.db"):
        entry.unlink()


def mark_worker_dead(pid: int) -> None:
    """Called by the gunicorn master when a worker exits (its live gauges go away)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


class _RouteRecord:
    __slots__ = ("buckets", "count", "duration", "seconds")

    def __init__(self, duration: Histogram) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * len(UPPER_BOUNDS)
        self.duration = duration


def no_connections() -> int:
    return 0


class RequestMetrics:
    """Per-worker accumulator for the RED metrics of one service."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.in_flight = 0
        self.bytes_in = 0
        self.bytes_out = 0
        # How many connections the worker's server holds: set by whoever runs the server
        # (services.kit.serve), read once per flush.
        self.open_connections: Callable[[], int] = no_connections
        self._records: dict[tuple[str, str, int], _RouteRecord] = {}
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._in_flight_gauge = HTTP_IN_FLIGHT.labels(service)
        self._connections_gauge = HTTP_CONNECTIONS.labels(service)
        self._bytes_in = HTTP_REQUEST_BYTES.labels(service)
        self._bytes_out = HTTP_RESPONSE_BYTES.labels(service)
        self._memory = WORKER_MEMORY.labels(service)
        self._cpu = WORKER_CPU.labels(service)
        self._cpu_seen = 0.0
        # Other per-worker accumulators flushed at the same moments (WebSocket counts).
        self.also_flush: list[Callable[[], None]] = []

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        record = self._records.get(key)
        if record is None:
            labels = (self.service, method, route, str(status))
            record = self._records[key] = _RouteRecord(HTTP_DURATION.labels(*labels))
            self._counters[key] = HTTP_REQUESTS.labels(*labels)
        record.count += 1
        record.seconds += seconds
        record.buckets[bisect.bisect_left(UPPER_BOUNDS, seconds)] += 1

    def flush(self) -> None:
        self._in_flight_gauge.set(self.in_flight)
        self._connections_gauge.set(self.open_connections())
        if self.bytes_in:
            self._bytes_in.inc(self.bytes_in)
            self.bytes_in = 0
        if self.bytes_out:
            self._bytes_out.inc(self.bytes_out)
            self.bytes_out = 0
        self._flush_process()
        for flush in self.also_flush:
            flush()
        for key, record in self._records.items():
            if not record.count:
                continue
            self._counters[key].inc(record.count)
            # Histogram children keep one non-cumulative value per bucket plus a sum;
            # adding to them in bulk is what observe() would have done one by one.
            histogram = record.duration
            for index, count in enumerate(record.buckets):
                if count:
                    histogram._buckets[index].inc(count)
                    record.buckets[index] = 0
            histogram._sum.inc(record.seconds)
            record.count = 0
            record.seconds = 0.0

    def _flush_process(self) -> None:
        times = os.times()
        cpu = times.user + times.system
        self._cpu.inc(cpu - self._cpu_seen)
        self._cpu_seen = cpu
        try:
            with open("/proc/self/statm") as statm:
                self._memory.set(int(statm.read().split()[1]) * PAGE_SIZE)
        except OSError:  # not Linux
            pass


def scrape_registry() -> CollectorRegistry:
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def metrics_handler(request_metrics: RequestMetrics) -> web.Handler:
    """/metrics: flush this worker's pending counts, then expose every worker's."""
    expose = make_aiohttp_handler(scrape_registry())

    async def handle_metrics(request: web.Request) -> web.StreamResponse:
        request_metrics.flush()
        return await expose(request)

    return handle_metrics

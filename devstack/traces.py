"""A small OTLP/HTTP trace receiver for devstack and the tests: no Jaeger, Tempo or
OpenTelemetry Collector is packaged for Debian or PyPI.

It takes `POST /v1/traces` (protobuf, as every OTLP/HTTP exporter sends by default),
decodes it with opentelemetry-proto, keeps the most recent spans in memory and answers

    GET /api/traces?limit=20              the latest traces: id, root span, services, spans
    GET /api/traces/{trace_id}            one trace's spans, oldest first (JSON)
    GET /api/stats                        spans received in all, traces kept

and appends every span as a JSON line to `--jsonl` when given (devstack: logs/traces.jsonl).
Run: `python -m devstack.traces --port 18096 [--jsonl FILE]`.
"""

from __future__ import annotations

import argparse
import gzip
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MAX_TRACES = 2000  # the oldest trace goes when a newer one would exceed it
PROTOBUF = "application/x-protobuf"
STORE = web.AppKey("store", "TraceStore")


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def span_as_dict(span: Span, service: str) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower(),
        "service": service,
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
        "status": Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_").lower(),
        "attributes": {item.key: _value(item.value) for item in span.attributes},
        "links": [link.trace_id.hex() + "/" + link.span_id.hex() for link in span.links],
    }


class TraceStore:
    def __init__(self, max_traces: int = MAX_TRACES, jsonl: Path | None = None) -> None:
        self.max_traces = max_traces
        self.traces: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.jsonl = jsonl.open("ab") if jsonl else None
        self.received = 0

    def add(self, request: ExportTraceServiceRequest) -> int:
        count = 0
        lines = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(attributes.get("service.name", "unknown"))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    entry = span_as_dict(span, service)
                    spans = self.traces.setdefault(entry["trace_id"], [])
                    spans.append(entry)
                    self.traces.move_to_end(entry["trace_id"])
                    lines.append(orjson.dumps(entry) + b"\n")
                    count += 1
        self.received += count
        while len(self.traces) > self.max_traces:
            self.traces.popitem(last=False)
        if self.jsonl and lines:
            self.jsonl.write(b"".join(lines))
            self.jsonl.flush()
        return count

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return sorted(self.traces.get(trace_id, []), key=lambda span: span["start_ns"])

    def latest(self, limit: int) -> list[dict[str, Any]]:
        summaries = []
        for trace_id in reversed(self.traces):
            spans = self.trace(trace_id)
            ids = {span["span_id"] for span in spans}
            roots = [span for span in spans if span["parent_span_id"] not in ids]
            summaries.append(
                {
                    "trace_id": trace_id,
                    "root": roots[0]["name"] if roots else None,
                    "services": sorted({span["service"] for span in spans}),
                    "spans": len(spans),
                }
            )
            if len(summaries) >= limit:
                break
        return summaries


async def receive(request: web.Request) -> web.Response:
    if request.content_type != PROTOBUF:
        raise web.HTTPUnsupportedMediaType(text=f"send {PROTOBUF} (OTLP/HTTP protobuf)")
    body = await request.read()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(body)
    except DecodeError:
        raise web.HTTPBadRequest(text="not an ExportTraceServiceRequest") from None
    request.app[STORE].add(message)
    return web.Response(
        body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF
    )


async def latest(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(int(request.query.get("limit", "20")), 500))
    except ValueError:
        raise web.HTTPBadRequest(text="limit: an integer") from None
    return web.json_response(
        request.app[STORE].latest(limit), dumps=lambda v: orjson.dumps(v).decode()
    )


async def one_trace(request: web.Request) -> web.Response:
    spans = request.app[STORE].trace(request.match_info["trace_id"].lower())
    if not spans:
        raise web.HTTPNotFound(text="no such trace (yet)")
    return web.json_response(spans, dumps=lambda v: orjson.dumps(v).decode())


async def stats(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response({"spans": store.received, "traces_kept": len(store.traces)})


def create_app(store: TraceStore | None = None) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[STORE] = store or TraceStore()

    async def close(app: web.Application) -> None:
        app[STORE].close()

    app.on_cleanup.append(close)
    app.router.add_post("/v1/traces", receive)
    app.router.add_get("/api/traces", latest)
    app.router.add_get("/api/traces/{trace_id}", one_trace)
    app.router.add_get("/api/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jsonl", type=Path, default=None)
    args = parser.parse_args()
    web.run_app(
        create_app(TraceStore(jsonl=args.jsonl)), host=args.host, port=args.port, print=None
    )


if __name__ == "__main__":
    main()

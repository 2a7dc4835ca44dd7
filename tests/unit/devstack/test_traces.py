"""devstack's trace receiver (devstack/traces.py) against the real OTLP/HTTP exporter."""

from __future__ import annotations

import asyncio

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from devstack.traces import TraceStore, create_app
from tests.conftest import free_port


def export_a_trace(endpoint: str) -> tuple[str, str, str]:
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("POST /api/v1/orders", kind=SpanKind.SERVER) as root,
        tracer.start_as_current_span("GET catalog", kind=SpanKind.CLIENT) as child,
    ):
        child.set_attribute("http.response.status_code", 200)
    provider.shutdown()
    context = root.get_span_context()
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        format(child.get_span_context().span_id, "016x"),
    )


async def test_spans_exported_over_otlp_http_are_kept_and_answered(aiohttp_client, tmp_path):
    jsonl = tmp_path / "traces.jsonl"
    client = await aiohttp_client(
        create_app(TraceStore(jsonl=jsonl)), server_kwargs={"port": free_port()}
    )
    endpoint = f"http://127.0.0.1:{client.port}/v1/traces"
    trace_id, root_id, child_id = await asyncio.to_thread(export_a_trace, endpoint)

    spans = await (await client.get(f"/api/traces/{trace_id}")).json()
    assert [(s["name"], s["kind"], s["parent_span_id"]) for s in spans] == [
        ("POST /api/v1/orders", "server", None),
        ("GET catalog", "client", root_id),
    ]
    assert spans[1]["span_id"] == child_id and spans[1]["service"] == "orders"
    assert spans[1]["attributes"] == {"http.response.status_code": 200}
    (latest,) = await (await client.get("/api/traces")).json()
    assert latest == {
        "trace_id": trace_id,
        "root": "POST /api/v1/orders",
        "services": ["orders"],
        "spans": 2,
    }
    assert len(jsonl.read_text().splitlines()) == 2
    assert await (await client.get("/api/stats")).json() == {"spans": 2, "traces_kept": 1}
    assert (await client.get(f"/api/traces/{'0' * 32}")).status == 404


async def test_what_is_not_otlp_protobuf_is_refused(aiohttp_client):
    client = await aiohttp_client(create_app())
    assert (await client.post("/v1/traces", json={})).status == 415
    bad = await client.post(
        "/v1/traces", data=b"\xff\xff", headers={"Content-Type": "application/x-protobuf"}
    )
    assert bad.status == 400


def test_the_store_keeps_the_latest_traces():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    store = TraceStore(max_traces=2)
    for n in range(3):
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = bytes([n + 1]) * 16, bytes([n + 1]) * 8, f"t{n}"
        store.add(request)
    assert [t["root"] for t in store.latest(10)] == ["t2", "t1"]

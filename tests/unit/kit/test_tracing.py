"""Tracing (services.kit.tracing): off without an endpoint, propagation in and out,
sampling decisions, the spans of SQL, Redis and events, the ids in the logs."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.kit import tracing
from services.kit.api import Api, json_response
from services.kit.app import create_app
from services.kit.config import KitSettings
from services.kit.context import unsampled_traceparent
from services.kit.events import event_handler, stream_fields
from services.kit.keys import ACCESS_LOG, DB_POOL, HTTP_CLIENT, INSTRUMENTATION, REDIS, TRACER
from services.kit.logs import JsonFormatter
from tests.conftest import free_port

api = Api("traced", title="Traced", description="Exercises tracing.")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SEEN: dict[str, object] = {}
log = logging.getLogger("agora.test")


@api.get("/api/v1/traced/hop", summary="Calls the upstream")
async def hop(request: web.Request) -> web.Response:
    SEEN["inside"] = trace.get_current_span().get_span_context()
    SEEN["unsampled"] = unsampled_traceparent.get()
    answer = await request.app[HTTP_CLIENT].get("next", "/seen")
    return json_response(answer.json())


@api.get("/api/v1/traced/stores", summary="A query and a Redis command")
async def stores(request: web.Request) -> web.Response:
    value = await request.app[DB_POOL].fetchval("SELECT 41 + 1")
    await request.app[REDIS].set("traced-key", value)
    return json_response({"value": value})


@api.get("/api/v1/traced/pipeline", summary="A Redis pipeline")
async def pipelined(request: web.Request) -> web.Response:
    async with request.app[REDIS].pipeline(transaction=False) as pipe:
        pipe.set("traced-a", 1).incr("traced-a").set("traced-b", 2)
        await pipe.execute()
    return json_response({})


@api.get("/api/v1/traced/boom", summary="Fails")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("no")


async def upstream_seen(request: web.Request) -> web.Response:
    return web.json_response({"traceparent": request.headers.get("traceparent")})


@pytest.fixture
async def upstream(aiohttp_server):
    app = web.Application()
    app.router.add_get("/seen", upstream_seen)
    server = await aiohttp_server(app, port=free_port())
    return f"http://127.0.0.1:{server.port}"


def provider(ratio: str, exporter: InMemorySpanExporter):
    environ = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": ratio}
    return tracing.provider_for("traced", exporter=exporter, environ=environ)


async def traced_client(aiohttp_client, upstream: str, ratio: str = "1", **settings: object):
    exporter = InMemorySpanExporter()
    app = create_app(
        KitSettings(service_name="traced", **settings),
        api,
        upstreams={"next": upstream},
        tracer_provider=provider(ratio, exporter),
    )
    return await aiohttp_client(app), exporter


def spans_by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list:
    return [span for span in exporter.get_finished_spans() if span.kind == kind]


# ---------------------------------------------------------------- off


def test_off_without_an_endpoint():
    assert not tracing.enabled({})
    assert tracing.provider_for("traced", environ={}) is None
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.enabled(
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}
    )
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}
    assert not tracing.enabled(disabled)


async def test_off_creates_no_span_and_sends_no_traceparent(
    aiohttp_client, upstream, monkeypatch, capfd
):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = create_app(KitSettings(service_name="traced"), api, upstreams={"next": upstream})
    assert TRACER not in app and app[INSTRUMENTATION].tracer is None
    assert type(app[ACCESS_LOG]) is not tracing.TracedAccessLog
    client = await aiohttp_client(app)
    answer = await client.get(
        "/api/v1/traced/hop", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    )
    assert answer.status == 200
    assert (await answer.json())["traceparent"] is None  # not even passed through
    assert not SEEN["inside"].is_valid  # no span was current in the handler
    client.app[ACCESS_LOG].flush()
    line = next(json.loads(x) for x in capfd.readouterr().out.splitlines() if "/traced/hop" in x)
    assert "trace_id" not in line


# ---------------------------------------------------------------- propagation


async def test_incoming_traceparent_is_continued_and_passed_on(aiohttp_client, upstream, capfd):
    client, exporter = await traced_client(aiohttp_client, upstream)
    answer = await client.get(
        "/api/v1/traced/hop",
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "X-Request-ID": "req-7"},
    )
    assert answer.status == 200
    (server,) = spans_by_kind(exporter, SpanKind.SERVER)
    (outbound,) = spans_by_kind(exporter, SpanKind.CLIENT)
    assert server.name == "GET /api/v1/traced/hop"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert server.attributes["http.route"] == "/api/v1/traced/hop"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["agora.request_id"] == "req-7"
    assert outbound.parent.span_id == server.context.span_id
    assert outbound.name == "GET next"
    # the upstream got this trace, its parent the client span, sampled
    sent = (await answer.json())["traceparent"]
    assert sent == f"00-{TRACE_ID}-{format(outbound.context.span_id, '016x')}-01"
    client.app[ACCESS_LOG].flush()
    line = next(json.loads(x) for x in capfd.readouterr().out.splitlines() if "req-7" in x)
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == format(server.context.span_id, "016x")


async def test_a_request_without_traceparent_starts_a_trace(aiohttp_client, upstream):
    client, exporter = await traced_client(aiohttp_client, upstream)
    answer = await client.get("/api/v1/traced/hop")
    (server,) = spans_by_kind(exporter, SpanKind.SERVER)
    assert server.parent is None
    sent = (await answer.json())["traceparent"]
    assert sent.split("-")[1] == format(server.context.trace_id, "032x")


async def test_error_log_inside_a_request_has_the_trace_id(aiohttp_client, upstream, capfd):
    """The JSON formatter as the services run it (handler on stderr), called in the
    request: the unhandled error's line names its trace."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("traced"))
    logging.getLogger("agora.http").addHandler(handler)
    try:
        client, exporter = await traced_client(aiohttp_client, upstream)
        await client.get("/api/v1/traced/boom")
    finally:
        logging.getLogger("agora.http").removeHandler(handler)
    (server,) = spans_by_kind(exporter, SpanKind.SERVER)
    assert server.status.status_code == trace.StatusCode.ERROR
    assert server.attributes["http.response.status_code"] == 500
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if "unhandled error" in x]
    assert lines and lines[0]["trace_id"] == format(server.context.trace_id, "032x")
    assert lines[0]["span_id"] == format(server.context.span_id, "016x")


# ---------------------------------------------------------------- sampling


async def test_ratio_zero_records_nothing_but_passes_the_decision_on(aiohttp_client, upstream):
    client, exporter = await traced_client(aiohttp_client, upstream, ratio="0")
    answer = await client.get("/api/v1/traced/hop")
    assert exporter.get_finished_spans() == ()
    _, trace_id, _, flags = (await answer.json())["traceparent"].split("-")
    # the sampled bit is clear (0x02 is W3C level 2's "random trace id"): the next service
    # follows the same decision
    assert int(flags, 16) & 1 == 0 and trace_id != "0" * 32


async def test_a_sampled_parent_is_followed_whatever_the_ratio(aiohttp_client, upstream):
    client, exporter = await traced_client(aiohttp_client, upstream, ratio="0")
    await client.get("/api/v1/traced/hop", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert len(spans_by_kind(exporter, SpanKind.SERVER)) == 1
    exporter.clear()
    await client.get("/api/v1/traced/hop", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    assert exporter.get_finished_spans() == ()


async def test_an_unsampled_parent_is_passed_on_without_a_span_of_our_own(
    aiohttp_client, upstream, capfd
):
    """What 99 of 100 requests are at 1 % sampling: no span started for the request or
    its call, the caller's ids in the access line and on the outbound call."""
    client, exporter = await traced_client(aiohttp_client, upstream, ratio="1")
    incoming = f"00-{TRACE_ID}-{PARENT_ID}-00"
    answer = await client.get(
        "/api/v1/traced/hop", headers={"traceparent": incoming, "X-Request-ID": "req-u"}
    )
    assert answer.status == 200
    assert exporter.get_finished_spans() == ()
    assert (await answer.json())["traceparent"] == incoming
    assert not SEEN["inside"].is_valid  # no OpenTelemetry context either: only the header
    assert SEEN["unsampled"] == incoming
    client.app[ACCESS_LOG].flush()
    line = next(json.loads(x) for x in capfd.readouterr().out.splitlines() if "req-u" in x)
    assert line["trace_id"] == TRACE_ID and line["span_id"] == PARENT_ID


async def test_an_unsampled_callers_ids_reach_error_lines_and_events(
    aiohttp_client, upstream, capfd
):
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("traced"))
    logging.getLogger("agora.http").addHandler(handler)
    try:
        client, exporter = await traced_client(aiohttp_client, upstream)
        incoming = f"00-{TRACE_ID}-{PARENT_ID}-00"
        await client.get("/api/v1/traced/boom", headers={"traceparent": incoming})
    finally:
        logging.getLogger("agora.http").removeHandler(handler)
    assert exporter.get_finished_spans() == ()
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if "unhandled error" in x]
    assert lines and lines[0]["trace_id"] == TRACE_ID and lines[0]["span_id"] == PARENT_ID
    token = unsampled_traceparent.set(incoming)
    try:
        assert tracing.current_traceparent() == incoming  # what the outbox stores
    finally:
        unsampled_traceparent.reset(token)


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE_ID}-{PARENT_ID}-01",  # sampled
        f"00-{'0' * 32}-{PARENT_ID}-00",  # invalid trace id
        f"00-{TRACE_ID}-{'0' * 16}-00",  # invalid parent id
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-00",  # upper-case hex
        f"01-{TRACE_ID}-{PARENT_ID}-00",  # another version
        f"00-{TRACE_ID}-{PARENT_ID}-00-extra",
    ],
)
def test_only_a_valid_unsampled_traceparent_takes_the_fast_path(value):
    assert tracing.UNSAMPLED_TRACEPARENT.fullmatch(value) is None
    assert tracing.UNSAMPLED_TRACEPARENT.fullmatch(f"00-{TRACE_ID}-{PARENT_ID}-00")
    assert tracing.UNSAMPLED_TRACEPARENT.fullmatch(f"00-{TRACE_ID}-{PARENT_ID}-02")


def test_sampler_settings_are_the_standard_ones():
    from opentelemetry.sdk.trace import sampling

    def sampler(name: str, arg: str | None = None):
        environ = {"OTEL_TRACES_SAMPLER": name} | ({"OTEL_TRACES_SAMPLER_ARG": arg} if arg else {})
        return tracing.provider_for("x", exporter=InMemorySpanExporter(), environ=environ).sampler

    assert sampler("always_off") is sampling.ALWAYS_OFF
    assert "0.01" in sampler("parentbased_traceidratio", "0.01").get_description()
    assert isinstance(sampler("traceidratio", "0.5"), sampling.TraceIdRatioBased)
    default = tracing.provider_for("x", exporter=InMemorySpanExporter(), environ={}).sampler
    assert isinstance(default, sampling.ParentBased)
    with pytest.raises(SystemExit, match="OTEL_TRACES_SAMPLER_ARG"):
        sampler("traceidratio", "2")
    with pytest.raises(SystemExit, match="OTEL_TRACES_SAMPLER"):
        sampler("sometimes")


# ---------------------------------------------------------------- SQL, Redis, events


async def test_queries_and_redis_commands_are_children_of_the_request(
    aiohttp_client, upstream, databases, redis_url
):
    exporter = InMemorySpanExporter()
    app = create_app(
        KitSettings(service_name="traced", database_url=databases["catalog"], redis_url=redis_url),
        api,
        postgres=True,
        redis=True,
        tracer_provider=provider("1", exporter),
    )
    client = await aiohttp_client(app)
    answer = await client.get("/api/v1/traced/stores")
    assert (await answer.json()) == {"value": 42}
    await client.get("/healthz")  # lets the query logger's call_soon run
    (server,) = [s for s in spans_by_kind(exporter, SpanKind.SERVER) if "stores" in s.name]
    children = [
        s
        for s in exporter.get_finished_spans()
        if s.parent and s.parent.span_id == server.context.span_id
    ]
    sql = next(s for s in children if s.attributes.get("db.system.name") == "postgresql")
    assert sql.name == "SELECT" and sql.attributes["db.query.text"] == "SELECT 41 + 1"
    assert server.start_time <= sql.start_time <= sql.end_time <= server.end_time
    command = next(s for s in children if s.attributes.get("db.system.name") == "redis")
    assert command.name == "SET"
    # the readiness probe's own queries have no recording parent: no spans of their own
    assert not [
        s for s in exporter.get_finished_spans() if s.parent is None and s.kind == SpanKind.CLIENT
    ]


async def test_a_redis_pipeline_is_one_span(aiohttp_client, upstream, redis_url):
    exporter = InMemorySpanExporter()
    app = create_app(
        KitSettings(service_name="traced", redis_url=redis_url),
        api,
        redis=True,
        tracer_provider=provider("1", exporter),
    )
    client = await aiohttp_client(app)
    assert (await client.get("/api/v1/traced/pipeline")).status == 200
    (server,) = [s for s in spans_by_kind(exporter, SpanKind.SERVER) if "pipeline" in s.name]
    (pipeline,) = [s for s in spans_by_kind(exporter, SpanKind.CLIENT) if s.name == "PIPELINE"]
    assert pipeline.parent.span_id == server.context.span_id
    assert pipeline.attributes["db.operation.name"] == "INCRBY SET"
    assert pipeline.attributes["db.operation.batch.size"] == 3
    # the pipeline's commands are in its span, not spans of their own
    assert not [s for s in spans_by_kind(exporter, SpanKind.CLIENT) if s.name == "SET"]


async def test_a_consumed_event_joins_the_trace_that_wrote_it():
    exporter = InMemorySpanExporter()
    tracer = provider("0", exporter).get_tracer("test")  # ratio 0: only the parent decides
    handled = []

    async def handler(event) -> bool:
        handled.append(trace.get_current_span().get_span_context())
        return True

    handle = event_handler("traced", "orders.events", handler, tracer)
    written = f"00-{TRACE_ID}-{PARENT_ID}-01"
    fields = stream_fields(uuid.uuid4(), "order.created", 7, datetime.now(UTC), "{}", written)
    assert fields["traceparent"] == written
    assert await handle("1-0", fields)
    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.CONSUMER and span.name == "orders.events process"
    assert format(span.context.trace_id, "032x") == TRACE_ID  # parent, not a link
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert handled[0].span_id == span.context.span_id
    # an event from an untraced writer has no field, and starts no sampled trace here
    plain = stream_fields(uuid.uuid4(), "order.created", 8, datetime.now(UTC), "{}")
    assert "traceparent" not in plain
    assert await handle("2-0", plain)
    assert len(exporter.get_finished_spans()) == 1


def test_current_traceparent_is_what_the_outbox_stores():
    exporter = InMemorySpanExporter()
    tracer = provider("1", exporter).get_tracer("test")
    assert tracing.current_traceparent() is None
    with tracer.start_as_current_span("write") as span:
        stored = tracing.current_traceparent()
    context = span.get_span_context()
    assert stored.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert int(stored[-2:], 16) & 1  # sampled


async def test_probes_and_scrapes_start_no_trace(aiohttp_client, upstream, capfd):
    client, exporter = await traced_client(aiohttp_client, upstream)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status == 200
    assert exporter.get_finished_spans() == ()
    await client.get("/readyz", headers={"X-Request-ID": "probe-1"})
    client.app[ACCESS_LOG].flush()
    assert "probe-1" not in capfd.readouterr().out  # still no access line for a success

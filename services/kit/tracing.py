"""Distributed tracing with OpenTelemetry: one trace per request across every service hop.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and `OTEL_SDK_DISABLED` is not true: then
`tracer_for()` answers None, no hook is installed, no span is ever created, and the kit's
hot path is what it is without tracing (BENCHMARKS.md, tracing).

On, each worker has its own TracerProvider (created in the worker: nothing forks under a
live exporter thread), exporting in batches over OTLP/HTTP (protobuf), with the standard
variables: `OTEL_TRACES_SAMPLER` (default here `parentbased_traceidratio`), its
`OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`. The spans:

- server: one per request, named `METHOD /route/{template}`, continuing an incoming W3C
  `traceparent` (wrapped around the kit's instrumented handler: services.kit.instrument);
- client: one per attempt of the kit's HTTP client, `traceparent` sent on every call,
  sampled or not, so the next service follows the same decision;
- SQL: one per asyncpg query (the pool's connection class) and Redis: one per command
  or pipeline (the client's execute_command and pipeline), both only under a recording
  span, so background polls never start traces of their own;
- events: the outbox stores the writer's `traceparent` with the event; the relay's
  PRODUCER span (`<stream> publish`, at the XADD) is its child and the consumer's span
  the publish span's child (parents, not links: one order's notification is in the
  order's trace, and the waterfall shows how long the event waited for the relay).

The sampling is decided at the head (the first service, or the ingress's traceparent);
there is no tail sampling in the services: a collector's tail_sampling processor does that.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import asyncpg
from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from orjson import dumps

from .context import unsampled_traceparent
from .logs import AccessLog

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SAMPLER = "parentbased_traceidratio"  # with OTEL_TRACES_SAMPLER_ARG (1.0 unset)
TRACEPARENT = "traceparent"
REQUEST_ID_HEADER = "X-Request-ID"  # as services.kit.instrument (which imports this module)
PROPAGATOR = TraceContextTextMapPropagator()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


def provider_for(
    service: str, *, exporter: Any = None, environ: Mapping[str, str] = os.environ
) -> Any:
    """This process's TracerProvider for `service`, or None when tracing is off (no
    endpoint). `exporter` replaces the OTLP one (tests): its spans go out one by one."""
    if exporter is None and not enabled(environ):
        return None
    # The SDK only when on: importing it costs start-up time that "off" need not pay.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider, sampling
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    sampler_name = environ.get("OTEL_TRACES_SAMPLER", DEFAULT_SAMPLER).strip().lower()
    sampler = _sampler(sampling, sampler_name, environ.get("OTEL_TRACES_SAMPLER_ARG"))
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": service}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _sampler(sampling: Any, name: str, argument: str | None) -> Any:
    """The standard sampler names; a bad name or ratio stops the service at start, naming
    the variable (the SDK would only log a warning and sample everything)."""
    fixed = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "parentbased_always_on": sampling.DEFAULT_ON,
        "parentbased_always_off": sampling.DEFAULT_OFF,
    }
    if name in fixed:
        return fixed[name]
    if name not in ("traceidratio", "parentbased_traceidratio"):
        known = ", ".join([*fixed, "traceidratio", "parentbased_traceidratio"])
        raise SystemExit(
            f"configuration error: OTEL_TRACES_SAMPLER: {name!r} is not one of {known}"
        )
    try:
        ratio = 1.0 if argument is None or not argument.strip() else float(argument)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise SystemExit(
            f"configuration error: OTEL_TRACES_SAMPLER_ARG: a ratio from 0 to 1 (got {argument!r})"
        )
    by_ratio = sampling.TraceIdRatioBased(ratio)
    return sampling.ParentBased(by_ratio) if name == "parentbased_traceidratio" else by_ratio


def tracing_ctx(provider: Any) -> Callable[[web.Application], AsyncIterator[None]]:
    """Exports the spans still buffered when the worker stops (first in, last out)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(provider.shutdown)

    return ctx


# ---------------------------------------------------------------- ids for the logs


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as hex, None outside any."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or the unsampled caller's (what the
    outbox stores with an event)."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT) or unsampled_traceparent.get()


class TracedAccessLog(AccessLog):
    """The access line with the trace and span ids of the request's server span; the
    plain line where there is none (probes and scrapes are not traced)."""

    def __init__(self, service: str, **kwargs: Any) -> None:
        super().__init__(service, **kwargs)
        self._traced_template = self._template[:-2] + b',"trace_id":"%b","span_id":"%b"}\n'

    def record(
        self,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        nanoseconds: int,
    ) -> None:
        traceparent = unsampled_traceparent.get()
        if traceparent is not None:  # the caller's ids, as they came (checked hex)
            trace_id, span_id = traceparent[3:35].encode(), traceparent[36:52].encode()
        else:
            span_context = trace.get_current_span().get_span_context()
            if not span_context.is_valid:
                super().record(request_id, method, path, route, status, nanoseconds)
                return
            trace_id = b"%032x" % span_context.trace_id
            span_id = b"%016x" % span_context.span_id
        if status < 400 and self.sample < 1.0 and self._random() >= self.sample:
            return
        # AccessLog.record's fields, spelled out again with the two ids: sharing a helper
        # would put a call more on every untraced request's path.
        self._lines.append(
            self._traced_template
            % (
                time.time(),
                b"error" if status >= 500 else b"info",
                dumps(request_id),
                method.encode(),
                dumps(path),
                self._routes.get(route) or self._routes.setdefault(route, dumps(route)),
                status,
                nanoseconds / 1e6,
                trace_id,
                span_id,
            )
        )
        if len(self._lines) >= self.max_buffered:
            self.flush()


# ---------------------------------------------------------------- server spans


def server_span(tracer: Tracer, handler: Handler, method: str, template: str) -> Handler:
    """`handler` (the kit's instrumented one) inside a SERVER span continuing the
    request's traceparent; attached as the current span, so the access line, error logs,
    outbound calls, queries and events written see it."""
    start_span, attach, detach = tracer.start_span, otel_context.attach, otel_context.detach
    extract, set_span_in_context = PROPAGATOR.extract, trace.set_span_in_context
    fixed_name = None if method == "*" else f"{method} {template}"
    skip_unsampled = drops_unsampled_children(tracer)
    unsampled_set, unsampled_reset = unsampled_traceparent.set, unsampled_traceparent.reset
    unsampled_match = UNSAMPLED_TRACEPARENT.fullmatch

    async def traced(request: web.Request) -> web.StreamResponse:
        headers = request.headers
        value = headers.get(TRACEPARENT)
        if value is None:
            parent = None
        elif skip_unsampled and unsampled_match(value):
            # The head said no: no span and no OpenTelemetry context for this request,
            # only the caller's header, passed on as it came to outbound calls and events
            # and its ids into the log lines (services.kit.context.unsampled_traceparent).
            token = unsampled_set(value)
            try:
                return await handler(request)
            finally:
                unsampled_reset(token)
        else:
            parent = extract(headers)
        span = start_span(
            fixed_name or f"{request.method} {template}",
            parent,
            SpanKind.SERVER,
            {"http.request.method": request.method, "http.route": template},
        )
        token = attach(set_span_in_context(span))
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects the handler raised
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499
            raise
        finally:
            if span.is_recording():
                request_id = headers.get(REQUEST_ID_HEADER) or (
                    response.headers.get(REQUEST_ID_HEADER) if response is not None else None
                )
                span.set_attribute("http.response.status_code", status)
                if request_id:
                    span.set_attribute("agora.request_id", request_id)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
            span.end()
            detach(token)

    traced.__name__ = getattr(handler, "__name__", "handler")
    return traced


# A version-00 traceparent whose sampled bit (the flags' lowest) is clear, lower-case hex
# as W3C requires, ids not all zero (checked by the negative look-aheads).
UNSAMPLED_TRACEPARENT = re.compile(
    r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f][02468ace]"
)


def drops_unsampled_children(tracer: Tracer) -> bool:
    """True when `tracer` samples no child of an unsampled parent (the parent-based
    samplers, with their defaults, which `provider_for` keeps): a request or call under
    such a parent needs no span of its own, only the parent's context passed on."""
    from opentelemetry.sdk.trace import sampling

    sampler = getattr(tracer, "sampler", None)
    return isinstance(sampler, sampling.ParentBased) or sampler is sampling.ALWAYS_OFF


def _sampled(context: otel_context.Context) -> bool:
    span_context = trace.get_current_span(context).get_span_context()
    return not span_context.is_valid or span_context.trace_flags.sampled


# ---------------------------------------------------------------- client spans

Attempt = Callable[..., Awaitable[Any]]


def client_attempts(tracer: Tracer, attempt: Attempt) -> Attempt:
    """The HTTP client's `_attempt(target, method, url, body, params, headers, budget)`
    inside a CLIENT span per attempt, its traceparent written into `headers`."""
    start_as_current_span, inject = tracer.start_as_current_span, PROPAGATOR.inject
    skip_unsampled, current_span = drops_unsampled_children(tracer), trace.get_current_span

    async def traced(
        target: Any,
        method: str,
        url: str,
        body: Any,
        params: Any,
        headers: MutableMapping[str, str],
        budget: float,
    ) -> Any:
        passed_on = unsampled_traceparent.get()
        if passed_on is not None:  # under an unsampled caller: its header, no span
            headers[TRACEPARENT] = passed_on
            return await attempt(target, method, url, body, params, headers, budget)
        if skip_unsampled:
            span_context = current_span().get_span_context()
            if span_context.is_valid and not span_context.trace_flags.sampled:
                inject(headers)  # the unsampled context passed on, no span of this call's
                return await attempt(target, method, url, body, params, headers, budget)
        with start_as_current_span(
            f"{method} {target.name}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": url,
                "peer.service": target.name,
            },
        ) as span:
            inject(headers)
            response = await attempt(target, method, url, body, params, headers, budget)
            if span.is_recording():
                span.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    span.set_status(StatusCode.ERROR)
            return response

    return traced


# ---------------------------------------------------------------- PostgreSQL and Redis


def connection_class(tracer: Tracer) -> type[asyncpg.Connection]:
    """The pool's connection class: each query (execute, executemany, fetch, fetchrow,
    fetchval) in a CLIENT span named by its statement's first word, when a recording span
    is current; otherwise one check and asyncpg's own method. (asyncpg's query logger,
    which the kit used first, runs on every query whatever the sampling decision: at 1 %
    it cost a GET product a third more CPU, BENCHMARKS.md.)"""
    start_span, current_span = tracer.start_span, trace.get_current_span
    base = asyncpg.Connection

    def span_for(query: str) -> Any:
        return start_span(
            _statement_name(query),
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": "postgresql", "db.query.text": query},
        )

    async def traced(method: Any, conn: Any, query: str, *args: Any, **options: Any) -> Any:
        span = span_for(query)
        try:
            return await method(conn, query, *args, **options)
        except BaseException as error:
            span.set_status(StatusCode.ERROR, type(error).__name__)
            raise
        finally:
            span.end()

    class TracedConnection(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        async def execute(self, query: str, *args: Any, **options: Any) -> Any:
            if current_span().is_recording():
                return await traced(base.execute, self, query, *args, **options)
            return await base.execute(self, query, *args, **options)

        async def executemany(self, command: str, args: Any, **options: Any) -> Any:
            if current_span().is_recording():
                return await traced(base.executemany, self, command, args, **options)
            return await base.executemany(self, command, args, **options)

        async def fetch(self, query: str, *args: Any, **options: Any) -> Any:
            if current_span().is_recording():
                return await traced(base.fetch, self, query, *args, **options)
            return await base.fetch(self, query, *args, **options)

        async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
            if current_span().is_recording():
                return await traced(base.fetchrow, self, query, *args, **options)
            return await base.fetchrow(self, query, *args, **options)

        async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
            if current_span().is_recording():
                return await traced(base.fetchval, self, query, *args, **options)
            return await base.fetchval(self, query, *args, **options)

    return TracedConnection


def _statement_name(query: str) -> str:
    """`SELECT`, `INSERT`, `WITH`...: the span name is the statement's first word (low
    cardinality); the text is an attribute."""
    words = query.split(None, 1)
    return words[0].rstrip(";").upper() if words else "SQL"


def trace_redis(tracer: Tracer, client: Any) -> None:
    """Each command of `client` in a CLIENT span (named by the command), and each
    pipeline's execute in one `PIPELINE` span (its commands and their number as
    attributes), when a recording span is current."""
    execute_command = client.execute_command
    start_as_current_span, current_span = tracer.start_as_current_span, trace.get_current_span

    async def traced_execute_command(*args: Any, **options: Any) -> Any:
        if not current_span().is_recording():
            return await execute_command(*args, **options)
        with start_as_current_span(
            str(args[0]), kind=SpanKind.CLIENT, attributes={"db.system.name": "redis"}
        ):
            return await execute_command(*args, **options)

    client.execute_command = traced_execute_command
    pipeline = client.pipeline

    def traced_pipeline(*args: Any, **options: Any) -> Any:
        pipe = pipeline(*args, **options)
        if current_span().is_recording():  # decided where the request builds it
            execute = pipe.execute

            async def traced_execute(raise_on_error: bool = True) -> Any:
                commands = sorted({str(command[0][0]) for command in pipe.command_stack})
                with start_as_current_span(
                    "PIPELINE",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "db.system.name": "redis",
                        "db.operation.name": " ".join(commands),
                        "db.operation.batch.size": len(pipe.command_stack),
                    },
                ):
                    return await execute(raise_on_error)

            pipe.execute = traced_execute
        return pipe

    client.pipeline = traced_pipeline


# ---------------------------------------------------------------- events


def publish_span(
    tracer: Tracer, stream: str, event_type: str, traceparent: str | None
) -> tuple[Any, str | None]:
    """The outbox relay's PRODUCER span for one event it publishes, a child of the span
    that wrote the event (`traceparent`, stored with it), and the traceparent the stream
    entry carries on: the new span's, so the consumer's span is the publish span's child.
    (None, traceparent) for an event written unsampled or untraced: nothing to record."""
    if not traceparent:
        return None, None
    parent = PROPAGATOR.extract({TRACEPARENT: traceparent})
    if not _sampled(parent):
        return None, traceparent
    span = tracer.start_span(
        f"{stream} publish",
        parent,
        SpanKind.PRODUCER,
        {
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.operation.type": "send",
            "agora.event_type": event_type,
        },
    )
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return span, carrier.get(TRACEPARENT, traceparent)


def consume_span(tracer: Tracer, stream: str, event_type: str, traceparent: str | None) -> Any:
    """The span a consumer processes one event in: a CONSUMER child of the relay's
    publish span (the entry's traceparent), or a new trace's root when it has none."""
    parent = PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else None
    return tracer.start_as_current_span(
        f"{stream} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.operation.type": "process",
            "agora.event_type": event_type,
        },
    )

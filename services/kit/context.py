"""Per-request context visible to any code the request runs (logging, outbound calls).

One context variable holding both values: setting and resetting it is per-request work.
"""

from __future__ import annotations

import contextvars
from typing import NamedTuple


class RequestContext(NamedTuple):
    request_id: str
    # loop.time() by which the request must be answered (None: no deadline); outbound
    # calls stop there.
    deadline: float | None


request_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


# The caller's W3C traceparent when it said "not sampled" and this service records
# nothing for the request (services.kit.tracing.server_span): passed on as it came to
# outbound calls and events, its ids written into the log lines. A string in a context
# variable instead of an OpenTelemetry context: at 1 % sampling this is 99 requests in
# 100, and the SDK's context costs several times more (BENCHMARKS.md, Tracing).
unsampled_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "unsampled_traceparent", default=None
)


def current_request_id() -> str | None:
    context = request_context.get()
    return context.request_id if context else None


def current_deadline() -> float | None:
    context = request_context.get()
    return context.deadline if context else None

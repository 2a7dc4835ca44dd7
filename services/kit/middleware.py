"""The one middleware every request passes: request id, deadline, errors, metrics, log.

It does, in this order, what DESIGN.md lists as separate middlewares: take or make the
request id, run the handler under the per-request deadline, turn every failure into the
error shape, then record the RED metrics and the access line. One function instead of
four because each middleware layer costs 3-4 us per request (DESIGN.md 9).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from time import perf_counter

from aiohttp import web

from .api import Api
from .context import deadline_var, request_id_var
from .db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from .errors import ApiError, error_response, from_http_exception
from .health import Readiness
from .keys import DEADLINE, REQUEST_ID
from .logs import AccessLog
from .metrics import RequestMetrics
from .redis_client import CONNECTION_ERRORS as REDIS_CONNECTION_ERRORS

log = logging.getLogger("agora.http")

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID = 128
UNAVAILABLE = DB_CONNECTION_ERRORS + REDIS_CONNECTION_ERRORS


class RequestIds:
    """Ids unique per process (random prefix, re-drawn after fork) plus a counter:
    far cheaper than uuid4 per request."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count(1)

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._prefix = secrets.token_hex(6)
            self._counter = itertools.count(1)
        return f"{self._prefix}-{next(self._counter)}"


def _usable(request_id: str | None) -> bool:
    return bool(request_id) and len(request_id) <= MAX_REQUEST_ID and request_id.isprintable()


def instrumentation(
    api: Api,
    metrics: RequestMetrics,
    access_log: AccessLog,
    readiness: Readiness,
    *,
    request_timeout: float,
    max_body_bytes: int,
) -> web.Middleware:
    ids = RequestIds()
    timeouts = api.timeouts

    @web.middleware
    async def observe(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        start = perf_counter()
        request_id = request.headers.get(REQUEST_ID_HEADER)
        if not _usable(request_id):
            request_id = ids.next()
        request[REQUEST_ID] = request_id
        token = request_id_var.set(request_id)
        route = request.match_info.route
        resource = route.resource
        template = resource.canonical if resource is not None else "unmatched"
        timeout = timeouts.get(route, request_timeout)
        metrics.in_flight += 1
        status = 500
        try:
            try:
                if timeout is None:
                    response = await handler(request)
                else:
                    deadline = asyncio.get_running_loop().time() + timeout
                    request[DEADLINE] = deadline
                    deadline_token = deadline_var.set(deadline)
                    try:
                        async with asyncio.timeout_at(deadline):
                            response = await handler(request)
                    finally:
                        deadline_var.reset(deadline_token)
            except ApiError as error:
                response = error.to_response()
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = from_http_exception(exc, max_body_bytes=max_body_bytes)
            except TimeoutError:
                response = error_response(504, f"No answer within {timeout} s")
            except UNAVAILABLE as exc:
                log.warning("dependency unavailable: %r", exc, extra={"route": template})
                response = error_response(
                    503, "A dependency is unavailable; try again", headers={"Retry-After": "1"}
                )
            except Exception:
                log.exception("unhandled error", extra={"route": template})
                response = error_response(500, "Internal server error")
            status = response.status
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = request_id
                if readiness.draining:
                    # Draining: finish this answer, then close, so the load balancer
                    # stops reusing a connection to a replica that is going away.
                    response.force_close()
            return response
        except web.HTTPException as redirect:
            status = redirect.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer
            raise
        finally:
            metrics.in_flight -= 1
            elapsed = perf_counter() - start
            metrics.observe(request.method, template, status, elapsed)
            access_log.record(request_id, request.method, request.path, template, status, elapsed)
            request_id_var.reset(token)

    return observe

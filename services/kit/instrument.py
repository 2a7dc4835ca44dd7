"""What every request passes through: request id, deadline, errors, metrics, access log.

It does, in this order, what DESIGN.md lists as middlewares: take or make the request
id, run the handler under the per-request deadline, turn every failure into the error
shape, then record the RED metrics and the access line. It wraps each route's handler
when the route is registered (`Instrumentation.add`) instead of being an aiohttp
middleware: a middleware, even one that does nothing, costs about 2.3 us per request in
aiohttp's machinery, and knowing the route up front spares looking it up per request
(BENCHMARKS.md, kit). Paths no route matches reach a catch-all route, wrapped the same
way, that answers 404 or 405 in the error shape.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from time import perf_counter_ns
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute
from multidict import istr

from .context import RequestContext, request_context
from .db import CONNECTION_ERRORS as DB_CONNECTION_ERRORS
from .deadlines import Deadlines
from .errors import ApiError, error_response, from_http_exception
from .health import Readiness
from .ingress_errors import ingress_error
from .keys import CATCH_ALL, SETTINGS
from .logs import AccessLog
from .metrics import RequestMetrics
from .redis_client import CONNECTION_ERRORS as REDIS_CONNECTION_ERRORS

log = logging.getLogger("agora.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = istr("X-Request-ID")  # istr: no case folding per lookup
MAX_REQUEST_ID = 128
UNAVAILABLE = DB_CONNECTION_ERRORS + REDIS_CONNECTION_ERRORS
UNMATCHED = "unmatched"  # the route label of every path no route matches
DEFAULT: Any = object()  # the service's REQUEST_TIMEOUT


class RequestIds:
    """Ids unique per process (a random prefix, drawn again in a forked child) plus a
    counter: far cheaper than uuid4 per request."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(6) + "-"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return self._prefix + str(next(self._counter))


class Instrumentation:
    def __init__(
        self,
        metrics: RequestMetrics,
        access_log: AccessLog,
        readiness: Readiness,
        deadlines: Deadlines,
        *,
        request_timeout: float,
        max_body_bytes: int,
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.readiness = readiness
        self.deadlines = deadlines
        self.request_timeout = request_timeout
        self.max_body_bytes = max_body_bytes
        self.ids = RequestIds()

    def add(
        self,
        app: web.Application,
        method: str,
        path: str,
        handler: Handler,
        *,
        route: str | None = None,
        timeout: float | None = DEFAULT,
        log_success: bool = True,
    ) -> AbstractRoute:
        """Register a route whose handler runs instrumented. `route` is its metrics
        label (the path template by default); a `timeout` of None means no deadline
        (streams, WebSockets); `log_success=False` writes access lines for its errors
        only (probes and scrapes: their metrics count them all)."""
        timeout = self.request_timeout if timeout is DEFAULT else timeout
        wrapped = self.wrap(handler, route or path, timeout, log_success=log_success)
        return app.router.add_route(method, path, wrapped)

    def add_catch_all(self, app: web.Application) -> None:
        """Last: answers every path the other routes do not match, 404 or 405."""
        catch_all = self.add(app, "*", "/{path:.*}", unmatched, route=UNMATCHED)
        app[CATCH_ALL] = catch_all.resource

    def wrap(
        self, handler: Handler, template: str, timeout: float | None, *, log_success: bool = True
    ) -> Handler:
        """The handler inside the kit's steps. Everything a request needs is bound here,
        once per route, so the per-request path is plain local lookups: it runs for
        every request of every service (BENCHMARKS.md, kit and peers)."""
        metrics, access_log, readiness = self.metrics, self.access_log, self.readiness
        ids, max_body_bytes = self.ids, self.max_body_bytes
        due, finish = self.deadlines.due, self.deadlines.finish
        observe, record, set_context = metrics.observe, access_log.record, request_context.set
        new_context = tuple.__new__  # RequestContext(...) runs a Python-level __new__

        async def instrumented(request: web.Request) -> web.StreamResponse:
            start = perf_counter_ns()
            request_id = request.headers.get(REQUEST_ID_HEADER)
            if not request_id or len(request_id) > MAX_REQUEST_ID or not request_id.isprintable():
                request_id = ids.next()
            metrics.in_flight += 1
            if request.body_exists:  # reading Content-Length costs ~0.2 us: only if any
                metrics.bytes_in += request.content_length or 0
            status = 500
            token = None
            try:
                try:
                    if timeout is None:
                        token = set_context(new_context(RequestContext, (request_id, None)))
                        response = await handler(request)
                    else:
                        # The task's own loop: get_running_loop() costs a getpid()
                        # system call each time, about 0.5 us here (BENCHMARKS.md, peers).
                        task = request.task
                        deadline = task.get_loop().time() + timeout
                        token = set_context(new_context(RequestContext, (request_id, deadline)))
                        due[task] = deadline
                        try:
                            response = await handler(request)
                        except BaseException:
                            if finish(task):  # cancelled by the sweep: too late
                                raise TimeoutError from None
                            raise
                        else:
                            finish(task)  # answered in time, or ignored the cancellation
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
                # len(body), not response.content_length (~0.7 us); a streamed answer's
                # length is not known here and counts 0
                if response.__class__ is web.Response and response.body.__class__ is bytes:
                    metrics.bytes_out += len(response.body)
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
                elapsed = perf_counter_ns() - start
                method = request.method
                observe(method, template, status, elapsed / 1e9)
                if log_success or status >= 400:
                    record(request_id, method, request.path, template, status, elapsed)
                if token is not None:
                    request_context.reset(token)

        instrumented.__name__ = getattr(handler, "__name__", "handler")
        return instrumented


async def unmatched(request: web.Request) -> web.StreamResponse:
    """No route matched: the ingress's error page or a request for a service without a
    ready replica (services.kit.ingress_errors); else 405 if some route has the path with
    other methods, else 404."""
    settings = request.app[SETTINGS]
    answer = ingress_error(request, settings.service_name, settings.ingress_routes)
    if answer is not None:
        return answer
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.app[CATCH_ALL]:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()

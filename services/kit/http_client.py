"""Outbound HTTP: one ClientSession per process, and per upstream a policy.

Every call has connect and total timeouts (never past the current request's deadline),
retries with capped exponential backoff and full jitter only when repeating it is safe
(idempotent methods, or a request carrying an idempotency key), a circuit breaker
(open after consecutive failures, one half-open probe after a cool-down), a bulkhead
(a bound on concurrent calls), the request id passed on (and the W3C traceparent, when
tracing is on), and metrics per upstream.

A call that cannot be made raises UpstreamUnavailable (503) or UpstreamTimeout (504):
ApiErrors, so the handler's caller gets the shared error shape quickly, never a hang
or a 500.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from .config import KitSettings
from .context import current_deadline, current_request_id
from .errors import ApiError
from .jsoncodec import dumps, loads
from .keys import HTTP_CLIENT, SETTINGS, TRACER
from .tracing import Tracer, client_attempts

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_HEADER = "Idempotency-Key"

CALLS = Counter(
    "http_client_requests_total",
    "Outbound HTTP calls by outcome.",
    ("service", "upstream", "method", "outcome"),
)
CALL_DURATION = Histogram(
    "http_client_request_duration_seconds",
    "Duration of outbound HTTP attempts.",
    ("service", "upstream"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RETRIES = Counter(
    "http_client_retries_total", "Outbound attempts repeated.", ("service", "upstream")
)
BREAKER_STATE = Gauge(
    "http_client_circuit_state",
    "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open (the worst worker).",
    ("service", "upstream"),
    multiprocess_mode="livemax",
)


class UpstreamUnavailable(ApiError):
    def __init__(self, upstream: str, why: str) -> None:
        super().__init__(503, f"{upstream} is unavailable: {why}", headers={"Retry-After": "1"})
        self.upstream = upstream


class BulkheadFull(UpstreamUnavailable):
    """Too many calls to this upstream in flight from this process: local overload, so it
    neither counts against the upstream's breaker nor is retried (that would add load)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, "too many calls in flight")


class UpstreamTimeout(ApiError):
    def __init__(self, upstream: str, seconds: float) -> None:
        super().__init__(504, f"{upstream} did not answer within {seconds:.2f} s")
        self.upstream = upstream


@dataclass(frozen=True)
class Policy:
    connect_timeout: float = 1.0
    timeout: float = 5.0  # per attempt, connect included
    retries: int = 2  # extra attempts, when retrying is safe
    backoff_base: float = 0.05
    backoff_max: float = 1.0
    breaker_failures: int = 5  # consecutive failures that open the circuit
    breaker_cooldown: float = 5.0  # seconds open before one probe is let through
    max_concurrent: int = 100  # bulkhead
    queue_timeout: float = 0.5  # how long a call waits for a bulkhead slot


class CircuitBreaker:
    CLOSED, HALF_OPEN, OPEN = 0, 1, 2

    def __init__(self, failures: int, cooldown: float, clock: Any = time.monotonic) -> None:
        self.failures_to_open = failures
        self.cooldown = cooldown
        self.clock = clock
        self.state = self.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False

    def allow(self) -> bool:
        if self.state == self.CLOSED:
            return True
        if self.state == self.OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = self.HALF_OPEN
            self.probing = False
        if self.state == self.HALF_OPEN and not self.probing:
            self.probing = True  # exactly one probe at a time
            return True
        return False

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled, or never sent): let another go."""
        self.probing = False

    def record_success(self) -> None:
        self.state = self.CLOSED
        self.failures = 0
        self.probing = False

    def record_failure(self) -> None:
        self.failures += 1
        self.probing = False
        if self.state == self.HALF_OPEN or self.failures >= self.failures_to_open:
            self.state = self.OPEN
            self.opened_at = self.clock()


@dataclass
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return loads(self.body)

    @property
    def ok(self) -> bool:
        return self.status < 400


class Upstream:
    def __init__(self, service: str, name: str, base_url: str, policy: Policy) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.breaker = CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown)
        self.slots = asyncio.Semaphore(policy.max_concurrent)
        self._duration = CALL_DURATION.labels(service, name)
        self._retries = RETRIES.labels(service, name)
        self._state = BREAKER_STATE.labels(service, name)
        self._service = service

    def count(self, method: str, outcome: str) -> None:
        CALLS.labels(self._service, self.name, method, outcome).inc()

    def publish_state(self) -> None:
        self._state.set(self.breaker.state)


class HttpClient:
    """The process's outbound client; `await client.request("catalog", "GET", path)`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        upstreams: Mapping[str, Upstream],
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self.session = session
        self.upstreams = dict(upstreams)
        if tracer is not None:  # a span per attempt, its traceparent sent along
            self._attempt = client_attempts(tracer, self._attempt)  # type: ignore[method-assign]

    async def request(
        self,
        upstream: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> UpstreamResponse:
        target = self.upstreams[upstream]
        policy = target.policy
        method = method.upper()
        send_headers = dict(headers or {})
        request_id = current_request_id()
        if request_id:
            send_headers["X-Request-ID"] = request_id
        if idempotency_key:
            send_headers[IDEMPOTENCY_HEADER] = idempotency_key
        body = None
        if json is not None:
            body = dumps(json, default=str)
            send_headers["Content-Type"] = "application/json"
        safe_to_repeat = method in IDEMPOTENT_METHODS or idempotency_key is not None
        attempts = 1 + (policy.retries if safe_to_repeat else 0)
        url = target.base_url + path
        loop = asyncio.get_running_loop()
        deadline = current_deadline()

        for attempt in range(attempts):
            remaining = math.inf if deadline is None else deadline - loop.time()
            budget = min(policy.timeout, remaining)
            if budget <= 0:
                target.count(method, "deadline")
                raise UpstreamTimeout(upstream, 0.0)
            breaker = target.breaker
            if not breaker.allow():
                target.count(method, "circuit_open")
                raise UpstreamUnavailable(upstream, "circuit open after repeated failures")
            probe = breaker.state == CircuitBreaker.HALF_OPEN
            last_attempt = attempt == attempts - 1
            try:
                response = await self._attempt(
                    target, method, url, body, params, send_headers, budget
                )
            except (BulkheadFull, asyncio.CancelledError):
                # No verdict on the upstream: a probe that ends here must not leave the
                # breaker waiting for it forever (half-open with no call let through).
                if probe:
                    breaker.release_probe()
                raise
            except UpstreamTimeout:
                self._failed(target)
                if last_attempt or budget >= remaining:
                    raise
            except UpstreamUnavailable:
                self._failed(target)
                if last_attempt:
                    raise
            else:
                if response.status in RETRYABLE_STATUSES:
                    self._failed(target)
                    target.count(method, "server_error")
                    if last_attempt:
                        raise UpstreamUnavailable(upstream, f"answered {response.status}")
                else:
                    target.breaker.record_success()
                    target.publish_state()
                    target.count(method, "ok" if response.status < 500 else "server_error")
                    return response
            target._retries.inc()
            pause = random.uniform(0, min(policy.backoff_max, policy.backoff_base * 2**attempt))
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - loop.time()))
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _attempt(
        self,
        target: Upstream,
        method: str,
        url: str,
        body: bytes | None,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        budget: float,
    ) -> UpstreamResponse:
        policy = target.policy
        started = time.perf_counter()
        try:
            async with asyncio.timeout(policy.queue_timeout):
                await target.slots.acquire()
        except TimeoutError:
            target.count(method, "bulkhead_full")
            raise BulkheadFull(target.name) from None
        try:
            timeout = aiohttp.ClientTimeout(
                total=budget, sock_connect=min(policy.connect_timeout, budget)
            )
            async with self.session.request(
                method, url, data=body, params=params, headers=headers, timeout=timeout
            ) as response:
                payload = await response.read()
                return UpstreamResponse(response.status, response.headers, payload)
        except TimeoutError:
            target.count(method, "timeout")
            raise UpstreamTimeout(target.name, budget) from None
        except aiohttp.ClientError as error:
            target.count(method, "connect_error")
            raise UpstreamUnavailable(target.name, type(error).__name__) from None
        finally:
            target.slots.release()
            target._duration.observe(time.perf_counter() - started)

    def _failed(self, target: Upstream) -> None:
        target.breaker.record_failure()
        target.publish_state()

    # Shorthands for the common verbs.
    async def get(self, upstream: str, path: str, **kwargs: Any) -> UpstreamResponse:
        return await self.request(upstream, "GET", path, **kwargs)

    async def post(self, upstream: str, path: str, **kwargs: Any) -> UpstreamResponse:
        return await self.request(upstream, "POST", path, **kwargs)

    async def delete(self, upstream: str, path: str, **kwargs: Any) -> UpstreamResponse:
        return await self.request(upstream, "DELETE", path, **kwargs)


def default_policy(settings: KitSettings) -> Policy:
    return Policy(
        connect_timeout=settings.upstream_connect_timeout,
        timeout=settings.upstream_timeout,
        retries=settings.upstream_retries,
        breaker_failures=settings.breaker_failures,
        breaker_cooldown=settings.breaker_cooldown,
        max_concurrent=settings.upstream_max_concurrent,
    )


def http_client_ctx(
    upstreams: Mapping[str, str], policies: Mapping[str, Policy] | None = None
) -> Any:
    """A cleanup context owning the session; `upstreams` maps names to base URLs.
    `policies` overrides the settings-derived policy for some upstreams."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        service = settings.service_name
        default = default_policy(settings)
        targets = {
            name: Upstream(service, name, url, (policies or {}).get(name, default))
            for name, url in upstreams.items()
        }
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=30),
            raise_for_status=False,
        )
        app[HTTP_CLIENT] = HttpClient(session, targets, tracer=app.get(TRACER))
        yield
        await session.close()

    return ctx

"""The outbound client against a real local upstream that can be slow, fail or count."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from services.kit.context import RequestContext, request_context
from services.kit.http_client import (
    BulkheadFull,
    CircuitBreaker,
    HttpClient,
    Policy,
    Upstream,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.conftest import free_port


class FakeUpstream:
    """Counts calls and concurrent calls; fails the first `failures` calls of /flaky."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.failures = 0
        self.last_headers: dict[str, str] = {}
        self.slow_started = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/ok", self.ok)
        app.router.add_route("*", "/flaky", self.flaky)
        app.router.add_route("*", "/slow", self.slow)
        return app

    async def ok(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.last_headers = dict(request.headers)
        return web.json_response({"ok": True})

    async def flaky(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            return web.json_response({"error": "down"}, status=503)
        return web.json_response({"ok": True})

    async def slow(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.slow_started.set()
        try:
            await asyncio.sleep(float(request.query.get("s", "0.2")))
        finally:
            self.in_flight -= 1
        return web.json_response({"ok": True})


@pytest.fixture
async def upstream(aiohttp_server):
    fake = FakeUpstream()
    fake.server = await aiohttp_server(fake.app())
    return fake


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(session, url: str, **policy) -> HttpClient:
    defaults = {"backoff_base": 0.001, "backoff_max": 0.002}
    target = Upstream("test", "up", url, Policy(**{**defaults, **policy}))
    return HttpClient(session, {"up": target})


def calls_counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_client_requests_total",
        {"service": "test", "upstream": "up", "method": "GET", "outcome": outcome},
    )
    return value or 0.0


async def test_passes_the_request_id_on(upstream, session):
    client = client_for(session, str(upstream.server.make_url("")))
    token = request_context.set(RequestContext("req-123", None))
    try:
        response = await client.get("up", "/ok")
    finally:
        request_context.reset(token)
    assert response.status == 200 and response.json() == {"ok": True}
    assert upstream.last_headers["X-Request-ID"] == "req-123"


async def test_idempotent_call_is_retried_until_it_succeeds(upstream, session):
    upstream.failures = 2
    client = client_for(session, str(upstream.server.make_url("")), retries=2)
    response = await client.get("up", "/flaky")
    assert response.status == 200
    assert upstream.calls == 3


async def test_retries_are_capped(upstream, session):
    upstream.failures = 10
    client = client_for(session, str(upstream.server.make_url("")), retries=2)
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get("up", "/flaky")
    assert caught.value.status == 503
    assert upstream.calls == 3


async def test_post_is_not_repeated(upstream, session):
    upstream.failures = 1
    client = client_for(session, str(upstream.server.make_url("")), retries=3)
    with pytest.raises(UpstreamUnavailable):
        await client.post("up", "/flaky", json={"x": 1})
    assert upstream.calls == 1


async def test_post_with_idempotency_key_is_repeated(upstream, session):
    upstream.failures = 1
    client = client_for(session, str(upstream.server.make_url("")), retries=3)
    response = await client.post("up", "/flaky", json={"x": 1}, idempotency_key="k1")
    assert response.status == 200
    assert upstream.calls == 2


async def test_client_errors_are_answers_not_failures(upstream, session):
    client = client_for(session, str(upstream.server.make_url("")), breaker_failures=1)
    for _ in range(3):
        response = await client.get("up", "/missing")
        assert response.status == 404
    assert client.upstreams["up"].breaker.state == CircuitBreaker.CLOSED


async def test_timeout_per_attempt(upstream, session):
    client = client_for(session, str(upstream.server.make_url("")), timeout=0.05, retries=1)
    before = calls_counted("timeout")
    with pytest.raises(UpstreamTimeout) as caught:
        await client.get("up", "/slow", params={"s": "1"})
    assert caught.value.status == 504
    assert upstream.calls == 2  # one retry, each attempt cut at 50 ms
    assert calls_counted("timeout") == before + 2


async def test_the_request_deadline_bounds_every_attempt(upstream, session):
    client = client_for(session, str(upstream.server.make_url("")), timeout=5, retries=5)
    token = request_context.set(RequestContext("r", asyncio.get_running_loop().time() + 0.05))
    try:
        with pytest.raises(UpstreamTimeout):
            await client.get("up", "/slow", params={"s": "1"})
    finally:
        request_context.reset(token)
    assert upstream.calls == 1  # no retry once the caller's deadline has passed


async def test_unreachable_upstream_is_unavailable(session):
    client = client_for(session, f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.get("up", "/ok")
    assert "ClientConnectorError" in caught.value.message


async def test_breaker_opens_then_probes_then_closes(upstream, session):
    client = client_for(session, str(upstream.server.make_url("")), retries=0, breaker_failures=3)
    now = [100.0]
    breaker = client.upstreams["up"].breaker
    breaker.clock = lambda: now[0]
    upstream.failures = 3
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await client.get("up", "/flaky")
    assert breaker.state == CircuitBreaker.OPEN
    with pytest.raises(UpstreamUnavailable, match="circuit open"):
        await client.get("up", "/flaky")
    assert upstream.calls == 3  # the open circuit answered without calling

    now[0] += breaker.cooldown  # cool-down over: one probe goes through and succeeds
    response = await client.get("up", "/flaky")
    assert response.status == 200
    assert breaker.state == CircuitBreaker.CLOSED


async def test_failed_probe_reopens(session):
    breaker = CircuitBreaker(failures=1, cooldown=5, clock=lambda: now[0])
    now = [0.0]
    breaker.record_failure()
    assert not breaker.allow()
    now[0] = 5.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    assert not breaker.allow()


async def test_bulkhead_bounds_concurrent_calls(upstream, session):
    client = client_for(
        session,
        str(upstream.server.make_url("")),
        max_concurrent=2,
        queue_timeout=0.05,
        retries=0,
    )
    results = await asyncio.gather(
        *(client.get("up", "/slow", params={"s": "0.3"}) for _ in range(6)),
        return_exceptions=True,
    )
    rejected = [r for r in results if isinstance(r, UpstreamUnavailable)]
    answered = [r for r in results if not isinstance(r, Exception)]
    assert upstream.peak == 2
    assert len(answered) == 2
    assert len(rejected) == 4
    assert all("too many calls" in r.message for r in rejected)


async def test_a_cancelled_probe_lets_the_next_call_probe(upstream, session):
    """The caller's deadline can cancel the half-open probe mid-call; the breaker must not
    then wait for that probe's verdict forever."""
    client = client_for(session, str(upstream.server.make_url("")), retries=0, breaker_failures=1)
    now = [100.0]
    breaker = client.upstreams["up"].breaker
    breaker.clock = lambda: now[0]
    upstream.failures = 1
    with pytest.raises(UpstreamUnavailable):
        await client.get("up", "/flaky")
    assert breaker.state == CircuitBreaker.OPEN

    now[0] += breaker.cooldown
    probe = asyncio.create_task(client.get("up", "/slow", params={"s": "5"}))
    await upstream.slow_started.wait()  # the probe reached the upstream
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    response = await client.get("up", "/ok")  # the next call is the probe
    assert response.status == 200
    assert breaker.state == CircuitBreaker.CLOSED


async def test_a_full_bulkhead_does_not_open_the_breaker(upstream, session):
    client = client_for(
        session,
        str(upstream.server.make_url("")),
        max_concurrent=1,
        queue_timeout=0.01,
        retries=2,
        breaker_failures=1,
    )
    results = await asyncio.gather(
        *(client.get("up", "/slow", params={"s": "0.2"}) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, BulkheadFull) for r in results) == 3
    assert upstream.calls == 1  # a rejected call is not retried into the same overload
    assert client.upstreams["up"].breaker.state == CircuitBreaker.CLOSED

"""Fault injection: off by default and then absent from the handlers; on, a share of the
API's requests fail or wait, in the error shape and in the metrics, never health."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from services.kit.config import KitSettings
from services.kit.faults import NO_FAULTS, Faults
from tests.unit.kit.sample_app import create_app, hello


def settings(**overrides) -> KitSettings:
    return KitSettings(service_name="sample", **overrides)


def test_off_by_default_leaves_handlers_unwrapped():
    faults = Faults.from_settings(settings())
    assert not faults.active
    assert faults.wrap(hello) is hello
    assert NO_FAULTS.wrap(hello) is hello
    assert Faults(latency_ms=50, latency_rate=0).wrap(hello) is hello


@pytest.mark.parametrize(
    "variable, value",
    [("fault_error_rate", 1.5), ("fault_error_rate", -0.1), ("fault_latency_ms", -1)],
)
def test_out_of_range_settings_are_refused(variable, value):
    with pytest.raises(ValidationError):
        settings(**{variable: value})


async def test_every_request_fails_at_rate_one_but_health_does_not(aiohttp_client):
    client = await aiohttp_client(create_app(settings(fault_error_rate=1.0)))
    for _ in range(5):
        resp = await client.get("/api/v1/sample/hello")
        assert resp.status == 500
        assert (await resp.json())["code"] == "injected_fault"
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/metrics")).status == 200


async def test_a_share_fails(aiohttp_client):
    client = await aiohttp_client(create_app(settings(fault_error_rate=0.3)))
    statuses = [(await client.get("/api/v1/sample/hello")).status for _ in range(400)]
    failed = statuses.count(500)
    assert set(statuses) == {200, 500}
    # binomial(400, 0.3): mean 120, sd 9.2; 5 sd either side
    assert 74 < failed < 166


async def test_injected_failures_are_counted_as_5xx(aiohttp_client):
    app = create_app(settings(fault_error_rate=1.0))
    client = await aiohttp_client(app)
    await client.get("/api/v1/sample/hello")
    text = await (await client.get("/metrics")).text()
    assert any(
        line.startswith("http_requests_total{")
        and 'route="/api/v1/sample/hello"' in line
        and 'status="500"' in line
        for line in text.splitlines()
    )


async def test_latency_is_added(aiohttp_client):
    client = await aiohttp_client(create_app(settings(fault_latency_ms=200)))
    started = time.monotonic()
    resp = await client.get("/api/v1/sample/hello")
    assert resp.status == 200
    assert time.monotonic() - started >= 0.2  # a lower bound: a sleep never ends early

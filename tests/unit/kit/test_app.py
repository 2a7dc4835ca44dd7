"""The kit's application: request ids, the error shape, deadlines, health, metrics, logs."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from services.kit.app import MissingSetting
from services.kit.app import create_app as kit_create_app
from services.kit.config import KitSettings
from services.kit.keys import ACCESS_LOG, INSTRUMENTATION, READINESS, REQUEST_METRICS
from tests.unit.kit.sample_app import api, create_app


def settings(**overrides) -> KitSettings:
    return KitSettings(service_name="sample", **overrides)


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(create_app(settings(max_body_bytes=2048, request_timeout=0.3)))


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error", "code", "details"}
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]


# ---------------------------------------------------------------- request id


async def test_request_id_is_made_when_absent(client):
    first = await client.get("/api/v1/sample/hello")
    second = await client.get("/api/v1/sample/hello")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_request_id_is_echoed(client):
    resp = await client.get("/api/v1/sample/hello", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"


async def test_unusable_request_id_is_replaced(client):
    resp = await client.get("/api/v1/sample/hello", headers={"X-Request-ID": "x" * 500})
    assert resp.headers["X-Request-ID"] != "x" * 500


async def test_errors_carry_the_request_id_too(client):
    resp = await client.get("/nowhere", headers={"X-Request-ID": "err-1"})
    assert resp.headers["X-Request-ID"] == "err-1"


# ---------------------------------------------------------------- the error shape


async def test_unknown_path_is_404_in_shape(client):
    resp = await client.get("/nowhere")
    assert resp.status == 404
    assert_error_shape(await resp.json(), "not_found")


async def test_wrong_method_is_405_with_allow(client):
    resp = await client.delete("/api/v1/sample/hello")
    assert resp.status == 405
    assert "GET" in resp.headers["Allow"]
    assert_error_shape(await resp.json(), "method_not_allowed")


async def test_body_over_the_limit_is_413(client):
    resp = await client.post("/api/v1/sample/echo", json={"text": "x" * 5000, "count": 1})
    assert resp.status == 413
    body = await resp.json()
    assert_error_shape(body, "payload_too_large")
    assert "2048" in body["error"]


async def test_wrong_content_type_is_415(client):
    resp = await client.post(
        "/api/v1/sample/echo", data="text=a", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert_error_shape(await resp.json(), "unsupported_media_type")


async def test_malformed_json_is_400(client):
    resp = await client.post(
        "/api/v1/sample/echo", data='{"text": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert_error_shape(await resp.json(), "malformed_json")


async def test_empty_body_is_400(client):
    resp = await client.post("/api/v1/sample/echo", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert_error_shape(await resp.json(), "validation_error")


async def test_array_instead_of_object_is_400(client):
    resp = await client.post("/api/v1/sample/echo", json=[{"text": "a", "count": 1}])
    assert resp.status == 400
    body = await resp.json()
    assert body["details"][0]["type"] == "model_type"


async def test_every_bad_field_is_listed(client):
    resp = await client.post("/api/v1/sample/echo", json={"count": "three", "extra": 1})
    assert resp.status == 400
    body = await resp.json()
    assert_error_shape(body, "validation_error")
    fields = {d["field"]: d["type"] for d in body["details"]}
    assert fields == {"text": "missing", "count": "int_type", "extra": "extra_forbidden"}


async def test_bad_query_is_400_naming_it(client):
    resp = await client.get("/api/v1/sample/slow", params={"seconds": "-1"})
    assert resp.status == 400
    details = (await resp.json())["details"]
    assert details[0]["field"] == "seconds" and details[0]["location"] == "query"


async def test_unexpected_error_is_500_without_internals(client, caplog):
    resp = await client.get("/api/v1/sample/boom", headers={"X-Request-ID": "boom-1"})
    assert resp.status == 500
    body = await resp.json()
    assert_error_shape(body, "internal")
    assert "secret" not in json.dumps(body)
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and logged[0].exc_info is not None


async def test_deadline_answers_504(client):
    resp = await client.get("/api/v1/sample/slow", params={"seconds": "5"})
    assert resp.status == 504
    assert_error_shape(await resp.json(), "timeout")


async def test_a_route_may_have_its_own_deadline(client):
    resp = await client.get("/api/v1/sample/quick", params={"seconds": "0.2"})
    assert resp.status == 504


async def test_a_request_within_its_deadline_is_left_alone(client):
    slow = await client.get("/api/v1/sample/slow", params={"seconds": "0.1"})
    timed_out = await client.get("/api/v1/sample/slow", params={"seconds": "5"})
    again = await client.get("/api/v1/sample/slow", params={"seconds": "0.1"})
    assert (slow.status, timed_out.status, again.status) == (200, 504, 200)
    deadlines = client.server.app[INSTRUMENTATION].deadlines
    assert not deadlines.due and not deadlines._expired  # nothing watched after the answer


async def test_created_answers_201(client):
    resp = await client.post("/api/v1/sample/echo", json={"text": " hi ", "count": 2})
    assert resp.status == 201
    assert await resp.json() == {"text": "hi", "count": 2}


# ---------------------------------------------------------------- health


async def test_healthz(client):
    resp = await client.get("/healthz")
    assert resp.status == 200


async def test_readyz_reports_dependencies_and_fails_only_when_draining(client):
    readiness = client.app[READINESS]

    async def broken() -> None:
        raise ConnectionError("database down")

    readiness.add_check("postgres", broken)
    resp = await client.get("/readyz")
    assert resp.status == 200  # a shared dependency is reported, not fatal
    body = await resp.json()
    assert body["dependencies"]["postgres"].startswith("error: ConnectionError")

    readiness.draining = True
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "draining"
    resp = await client.get("/api/v1/sample/hello")
    assert resp.status == 200  # still serving while draining...
    assert resp.headers["Connection"] == "close"  # ...but closing connections


def test_missing_database_url_stops_the_app():
    with pytest.raises(MissingSetting, match="DATABASE_URL"):
        kit_create_app(settings(), api, postgres=True)


# ---------------------------------------------------------------- metrics


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, {"service": "sample", **labels}) or 0.0


async def test_red_metrics_per_route_template(client):
    labels = {"method": "GET", "route": "/api/v1/sample/hello", "status": "200"}
    before = sample("http_requests_total", **labels)
    before_count = sample("http_request_duration_seconds_count", **labels)
    for _ in range(5):
        await client.get("/api/v1/sample/hello")
    await client.get("/no/such/path/123")
    client.app[REQUEST_METRICS].flush()
    assert sample("http_requests_total", **labels) == before + 5
    assert sample("http_request_duration_seconds_count", **labels) == before_count + 5
    assert sample("http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert sample("http_requests_total", method="GET", route="/no/such/path/123", status="404") == 0


async def test_metrics_endpoint_exposes_them(client):
    await client.get("/api/v1/sample/hello")
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert (
        'http_requests_total{method="GET",route="/api/v1/sample/hello",service="sample",status="200"}'
        in text
    )
    assert "http_requests_in_flight" in text


async def test_in_flight_counts_running_requests(client):
    import asyncio

    metrics = client.app[REQUEST_METRICS]
    task = asyncio.create_task(client.get("/api/v1/sample/slow", params={"seconds": "0.2"}))
    for _ in range(100):
        if metrics.in_flight:
            break
        await asyncio.sleep(0.01)
    assert metrics.in_flight == 1
    await task
    assert metrics.in_flight == 0


# ---------------------------------------------------------------- access log


async def test_access_log_line_per_request(client, capfd):
    await client.get("/api/v1/sample/hello", headers={"X-Request-ID": "log-1"})
    client.app[ACCESS_LOG].flush()
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if "log-1" in line]
    assert len(lines) == 1
    line = lines[0]
    assert line["service"] == "sample" and line["route"] == "/api/v1/sample/hello"
    assert line["status"] == 200 and line["duration_ms"] >= 0 and line["logger"] == "access"


async def test_probes_and_scrapes_are_counted_not_logged_unless_they_fail(client, capfd):
    def count(route: str, status: str) -> float:
        labels = {"service": "sample", "method": "GET", "route": route, "status": status}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    before = count("/healthz", "200"), count("/readyz", "503")
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path, headers={"X-Request-ID": "probe-ok"})).status == 200
    client.app[READINESS].draining = True  # readiness now fails: that one is written
    assert (await client.get("/readyz", headers={"X-Request-ID": "probe-bad"})).status == 503
    client.app[ACCESS_LOG].flush()
    out = capfd.readouterr().out
    assert "probe-ok" not in out and "probe-bad" in out
    client.app[REQUEST_METRICS].flush()
    assert (count("/healthz", "200"), count("/readyz", "503")) == (before[0] + 1, before[1] + 1)


async def test_sampling_keeps_every_error(aiohttp_client, capfd):
    client = await aiohttp_client(create_app(settings(access_log_sample=0.0)))
    await client.get("/api/v1/sample/hello", headers={"X-Request-ID": "ok-1"})
    await client.get("/nowhere", headers={"X-Request-ID": "bad-1"})
    client.app[ACCESS_LOG].flush()
    out = capfd.readouterr().out
    assert "bad-1" in out and "ok-1" not in out


# ---------------------------------------------------------------- OpenAPI and docs


async def test_openapi_document(client):
    resp = await client.get("/api/v1/sample/openapi.json")
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    echo = doc["paths"]["/api/v1/sample/echo"]["post"]
    assert echo["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Echo")
    assert set(echo["responses"]) >= {"201", "400", "413", "415"}
    assert doc["components"]["schemas"]["Echo"]["required"] == ["text", "count"]
    slow = doc["paths"]["/api/v1/sample/slow"]["get"]
    assert slow["parameters"][0]["name"] == "seconds"
    assert slow["parameters"][0]["in"] == "query"


async def test_docs_are_served_without_a_cdn(client):
    page = await (await client.get("/api/v1/sample/docs")).text()
    assert "http" not in page.replace("http-equiv", "")  # every asset is local
    asset = await client.get("/api/v1/sample/docs/assets/swagger-ui-bundle.js")
    assert asset.status == 200
    init = await (await client.get("/api/v1/sample/docs/init.js")).text()
    assert "/api/v1/sample/openapi.json" in init

"""The ingress's own errors, as the service the chart makes ingress-nginx's error backend
answers them (services/kit/ingress_errors.py): what ingress-nginx sends it is mimicked
here header for header."""

from __future__ import annotations

import pytest

from services.kit.config import KitSettings
from tests.unit.kit.sample_app import create_app

ROUTES = {"/api/v1/users": "users", "/api/v1/sample": "sample", "/api/v1/facts/docs": "facts"}


@pytest.fixture
async def backend(aiohttp_client):
    settings = KitSettings(service_name="sample", ingress_routes=ROUTES)
    return await aiohttp_client(create_app(settings))


def ingress_nginx_error_page(code: int, service: str = "users") -> dict[str, str]:
    """The headers of ingress-nginx's @custom_<upstream>_<code> location."""
    return {
        "X-Code": str(code),
        "X-Format": "application/json",
        "X-Original-URI": "/api/v1/users/7",
        "X-Namespace": "agora",
        "X-Ingress-Name": "agora",
        "X-Service-Name": service,
        "X-Service-Port": "8000",
        "X-Request-ID": "ingress-req-1",
    }


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [(502, "bad_gateway", "users gave no valid answer"),
     (503, "unavailable", "users is unavailable"),
     (504, "timeout", "users did not answer in time")],
)  # fmt: skip
async def test_an_error_page_is_answered_with_its_code_in_the_shape(backend, status, code, says):
    for method in ("GET", "POST"):  # nginx keeps the method of the failed request
        resp = await backend.request(method, "/", headers=ingress_nginx_error_page(status))
        assert resp.status == status
        assert resp.content_type == "application/json"
        assert resp.headers["X-Request-ID"] == "ingress-req-1"
        body = await resp.json()
        assert set(body) == {"error", "code", "details"}
        assert body["code"] == code and says in body["error"]
        assert ("Retry-After" in resp.headers) == (status == 503)


async def test_a_request_for_a_service_without_a_ready_replica_is_503_naming_it(backend):
    resp = await backend.post("/api/v1/users/7/orders", json={}, headers={"X-Request-ID": "r-2"})
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1" and resp.headers["X-Request-ID"] == "r-2"
    body = await resp.json()
    assert body["code"] == "unavailable" and body["error"].startswith("users is unavailable")
    # the longest prefix decides: facts' docs under another service's prefix
    assert (await (await backend.get("/api/v1/facts/docs")).json())["error"].startswith("facts")


@pytest.mark.parametrize(
    "path", ["/no/such/thing", "/api/v1/sample/nothing", "/api/v1/usersx", "/"]
)
async def test_other_unknown_paths_stay_404(backend, path):
    resp = await backend.get(path, headers={"X-Code": "not-a-code"})
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"


async def test_the_routes_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "calc")
    monkeypatch.setenv("INGRESS_ROUTES", '{"/api/v1/users": "users"}')
    assert KitSettings().ingress_routes == {"/api/v1/users": "users"}
    monkeypatch.delenv("INGRESS_ROUTES")
    assert KitSettings().ingress_routes == {}

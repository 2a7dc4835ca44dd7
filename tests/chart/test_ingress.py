"""The Ingresses' answers to what no service answers: unknown paths, ingress-nginx's own
errors and a Service without a ready replica, all in the error shape.

ingress-nginx cannot run here, so the requests it would send are made by hand, header for
header, to the very service each Ingress names as its default backend: its own app, built
from its rendered environment.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from services.kit.serve import service_module

from .conftest import Rendered, render, render_text

DEFAULT_BACKEND = "nginx.ingress.kubernetes.io/default-backend"
CUSTOM_ERRORS = "nginx.ingress.kubernetes.io/custom-http-errors"


def main_ingresses(rendered: Rendered) -> list[dict[str, Any]]:
    """The Ingresses but canaries' (which repeat their service's paths for its canary and
    take every other setting from these: tests/chart/test_canary.py)."""
    return [
        i
        for i in rendered.of_kind("Ingress")
        if i["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/canary") != "true"
    ]


def ingress_paths(ingress: dict[str, Any]) -> dict[str, str]:
    return {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


def test_every_service_path_is_on_exactly_one_ingress(rendered: Rendered) -> None:
    seen: dict[str, str] = {}
    for ingress in main_ingresses(rendered):
        for path, service in ingress_paths(ingress).items():
            assert path not in seen, f"{path} on two Ingresses"
            seen[path] = service
    expected = routes_of(rendered)
    if "/" not in expected:  # what no prefix claims goes to the default backend
        expected["/"] = rendered.values["ingress"]["defaultBackend"]
    assert seen == expected


def routes_of(rendered: Rendered) -> dict[str, str]:
    """Every HTTP and WebSocket prefix of the enabled services, as devstack routes them."""
    return {
        p.rstrip("/") or "/": w.name
        for w in rendered.workloads
        for p in [*w.ingress, *w.websockets]
    }


def test_error_pages_only_where_services_leave_their_5xx_to_the_ingress(
    rendered: Rendered,
) -> None:
    values = rendered.values["ingress"]
    pages = ",".join(str(code) for code in values["errorPages"])
    own = {w.name for w in rendered.workloads if not w.raw["ingressErrorPages"]}
    for ingress in main_ingresses(rendered):
        annotations = ingress["metadata"]["annotations"]
        assert annotations[DEFAULT_BACKEND] == values["defaultBackend"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
        services = set(ingress_paths(ingress).values())
        if CUSTOM_ERRORS in annotations:
            assert annotations[CUSTOM_ERRORS] == pages
            assert not services & own, "nginx would replace these services' own 5xx bodies"
        elif ingress["metadata"]["name"] != "agora-websockets":  # its own answers pass too
            assert services <= own
    # socialcompat answers in DeathStarBench's plain text, when it is enabled.
    compat = {w.name for w in rendered.workloads if w.name == "socialcompat"}
    assert own == {"facts", "orders", "pipeline"} | compat
    assert CUSTOM_ERRORS in rendered.get("Ingress", "agora")["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("ingress.defaultBackend=nowhere", "ingress.defaultBackend: nowhere is not an enabled"),
        ("services.calc.enabled=false", "ingress.defaultBackend: calc is not an enabled"),
        ("ingress.defaultBackend=realtime", 'realtime routes "/", where ingress-nginx sends'),
    ],
)
def test_a_default_backend_that_cannot_answer_fails_the_render(setting: str, complaint: str):
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        render_text("--set", setting)


@pytest.mark.parametrize(
    ("setting", "root"), [(None, "realtime"), ("services.realtime.enabled=false", "calc")]
)
def test_the_root_is_the_service_that_owns_it_or_the_default_backend(setting, root) -> None:
    rendered = render("root", [], *(["--set", setting] if setting else []))
    paths = {}
    for ingress in rendered.of_kind("Ingress"):
        paths.update(ingress_paths(ingress))
        assert ingress["spec"]["defaultBackend"]["service"]["name"] == "calc"
    assert paths["/"] == root


def test_without_a_default_backend_the_ingress_has_no_error_answers() -> None:
    rendered = render("bare", [], "--set", "ingress.defaultBackend=")
    for ingress in rendered.of_kind("Ingress"):
        assert "defaultBackend" not in ingress["spec"]
        assert not {DEFAULT_BACKEND, CUSTOM_ERRORS} & set(ingress["metadata"]["annotations"])
        assert ingress_paths(ingress).get("/") in (None, "realtime")  # no catch-all path
    assert all("INGRESS_ROUTES" not in rendered.env_of(d) for d in rendered.of_kind("Deployment"))


def test_only_the_default_backend_knows_the_routes(rendered: Rendered) -> None:
    backend = rendered.values["ingress"]["defaultBackend"]
    routes = routes_of(rendered)
    for workload in rendered.workloads:
        env = rendered.env_of(rendered.get("Deployment", workload.name))
        if workload.name == backend:
            assert json.loads(env["INGRESS_ROUTES"]) == routes
        else:
            assert "INGRESS_ROUTES" not in env


# ---------------------------------------------------------------- the answers themselves


def mounted_key(rendered: Rendered, variable: str, directory: Path) -> str:
    """The token key file a pod finds mounted (services/kit/auth.py), written locally."""
    if variable == "AUTH_PUBLIC_KEY_FILE":
        content = rendered.get("ConfigMap", "agora-auth-public")["data"]["public.pem"].encode()
    else:
        secret = rendered.get("Secret", "agora-auth-signing")["data"]["private.pem"]
        content = base64.b64decode(secret)
    path = directory / variable.lower()
    path.write_bytes(content)
    return str(path)


@pytest.fixture
def service_app(rendered: Rendered, aiohttp_client, monkeypatch, tmp_path):
    """The app of one service, with its rendered environment (and the key files its pod
    would have mounted); its pools and clients are not started (the catch-all needs
    none)."""

    async def start(name: str):
        deployment = rendered.get("Deployment", name)
        for key, value in rendered.env_of(deployment).items():
            if key in ("AUTH_PUBLIC_KEY_FILE", "AUTH_PRIVATE_KEY_FILE"):
                monkeypatch.setenv(key, mounted_key(rendered, key, tmp_path))
            elif key != "PROMETHEUS_MULTIPROC_DIR" and not value.startswith("secret:"):
                monkeypatch.setenv(key, value.replace("$(REDIS_PASSWORD)", "secret"))
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[0] == "agora-serve"  # the kit's catch-all answers
        app = service_module(command[1]).create_app()
        app.cleanup_ctx.clear()
        return await aiohttp_client(app)

    return start


def assert_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error", "code", "details"} and body["code"] == code


async def test_an_unknown_path_is_answered_404_in_the_shape(rendered: Rendered, service_app):
    """Through the "/" path: to the service that owns "/", or the default backend."""
    root = routes_of(rendered).get("/") or rendered.values["ingress"]["defaultBackend"]
    client = await service_app(root)
    resp = await client.get("/no/such/thing", headers={"X-Request-ID": "unknown-1"})
    assert resp.status == 404 and resp.content_type == "application/json"
    assert resp.headers["X-Request-ID"] == "unknown-1"
    assert_shape(await resp.json(), "not_found")


@pytest.fixture
async def default_backend(rendered: Rendered, service_app):
    """The service every Ingress names as its default backend."""
    (name,) = {i["spec"]["defaultBackend"]["service"]["name"] for i in main_ingresses(rendered)}
    return await service_app(name)


async def test_the_default_backend_answers_json(rendered: Rendered, default_backend) -> None:
    # custom-http-errors: the error page of a failed request, as ingress-nginx sends it
    codes = {502: "bad_gateway", 503: "unavailable", 504: "timeout"}
    for status in rendered.values["ingress"]["errorPages"]:
        headers = {"X-Code": str(status), "X-Service-Name": "users", "X-Format": "*/*"}
        headers |= {"X-Original-URI": "/api/v1/users/7", "X-Request-ID": f"page-{status}"}
        resp = await default_backend.get("/", headers=headers)
        assert resp.status == status and resp.content_type == "application/json"
        assert resp.headers["X-Request-ID"] == f"page-{status}"
        assert_shape(await resp.json(), codes.get(status, "error"))

    # default-backend: a Service without a ready endpoint sends its requests here as they are
    backend = rendered.values["ingress"]["defaultBackend"]
    for workload in rendered.workloads:
        if workload.name == backend:
            continue
        for prefix in [*workload.ingress, *workload.websockets]:
            resp = await default_backend.post(f"{prefix.rstrip('/')}/x", json={})
            assert resp.status == 503, prefix
            assert resp.headers["Retry-After"] == "1"
            body = await resp.json()
            assert_shape(body, "unavailable")
            assert body["error"].startswith(f"{workload.name} is unavailable")

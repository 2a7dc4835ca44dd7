"""What every service shares, seen through the ingress: ids, errors, docs, Prometheus."""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest

from devstack.topology import workloads
from tests.conftest import prometheus_query

SERVICES = workloads()


def query(prometheus: httpx.Client, expression: str) -> dict[str, float]:
    """An instant query, as {pod: value}."""
    result = prometheus_query(prometheus, expression)
    return {r["metric"].get("pod", ""): float(r["value"][1]) for r in result}


def test_request_id_is_echoed_through_the_ingress(agora):
    resp = agora.get("/api/v1/products", headers={"X-Request-ID": "it-req-1"})
    assert resp.headers["X-Request-ID"] == "it-req-1"
    made = agora.get("/api/v1/products")
    assert made.headers["X-Request-ID"]


def test_unknown_path_is_404_in_shape(agora):
    # the first matches no prefix: devstack's nginx answers it, the cluster's Ingress
    # sends it to ingress.defaultBackend; the second reaches catalog's catch-all
    for path in ("/no/such/thing", "/api/v1/products/1/nothing"):
        resp = agora.get(path, headers={"X-Request-ID": "it-unknown-1"})
        assert resp.status_code == 404
        assert resp.headers["Content-Type"].startswith("application/json")
        assert set(resp.json()) == {"error", "code", "details"}
        assert resp.json()["code"] == "not_found"


def test_wrong_method_is_405_with_allow(agora):
    resp = agora.request("PATCH", "/api/v1/products")
    assert resp.status_code == 405
    assert "GET" in resp.headers["Allow"] and resp.json()["code"] == "method_not_allowed"


def test_wrong_content_type_is_415(agora):
    resp = agora.post("/api/v1/users", content="name=Ivo", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415


@pytest.mark.parametrize("service", [w.name for w in SERVICES if w.ingress])
def test_every_service_has_openapi_and_docs(agora, service):
    doc = agora.get(f"/api/v1/{service}/openapi.json")
    assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.")
    assert doc.json()["paths"]
    page = agora.get(f"/api/v1/{service}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text


def up_targets(prometheus: httpx.Client) -> dict[str, set[str]]:
    """The pods Prometheus scrapes successfully, per service (`app` label). Pod names are
    not assumed: devstack's are <service>-<n>, Kubernetes' <deployment>-<hash>-<suffix>."""
    targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
    pods: dict[str, set[str]] = {}
    for target in targets:
        labels = target["labels"]
        if target["health"] == "up" and labels.get("job") == "agora":
            pods.setdefault(labels["app"], set()).add(labels["pod"])
    return pods


def test_prometheus_scrapes_every_replica(prometheus):
    expected = {w.name: w.replicas for w in SERVICES}
    deadline = time.monotonic() + 30
    while True:
        up = {app: len(pods) for app, pods in up_targets(prometheus).items()}
        missing = {app: n for app, n in expected.items() if up.get(app, 0) < n}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not missing, f"replicas expected up, per service: {missing}; up: {up}"


def test_traffic_spreads_over_replicas_and_counters_grow(agora, prometheus):
    replicas = next(w.replicas for w in SERVICES if w.name == "catalog")
    pods = up_targets(prometheus).get("catalog", set())
    assert len(pods) >= replicas >= 2, pods
    product = agora.post("/api/v1/products", json={"name": "Counted", "price": 1, "quantity": 1})
    path = f"/api/v1/products/{product.json()['id']}"
    expression = (
        "sum by (pod) (http_requests_total"
        '{app="catalog",route="/api/v1/products/{id}",status="200"})'
    )
    before = query(prometheus, expression)
    requests = 200
    for _ in range(requests):
        # a new connection each time, as many clients would: the ingress spreads them
        assert httpx.get(agora.base_url.join(path)).status_code == 200
    deadline = time.monotonic() + 30
    while True:
        after = query(prometheus, expression)
        grown = {pod: after.get(pod, 0) - before.get(pod, 0) for pod in pods}
        if sum(grown.values()) >= requests or time.monotonic() > deadline:
            break
        time.sleep(1)
    # at least ours: requests of earlier tests may still be on their way into Prometheus
    assert sum(grown.values()) >= requests, grown
    assert all(count > 0 for count in grown.values()), f"a replica got nothing: {grown}"


# ---------------------------------------------------------------- the ingress' own answers

ERROR_SHAPE = {"error", "code", "details"}


@pytest.mark.parametrize("path", ["/no/such/prefix", "/api/v1/nothing", "/api/v1/products2"])
def test_an_unknown_prefix_is_404_in_shape_with_an_id(agora, path):
    # nginx answers it itself, or the service of "/" (realtime's landing page) does
    resp = agora.get(path, headers={"X-Request-ID": "it-nginx-1"})
    assert resp.status_code == 404
    assert set(resp.json()) == ERROR_SHAPE and resp.json()["code"] == "not_found"
    assert resp.headers["X-Request-ID"] == "it-nginx-1"
    made = agora.get(path)
    assert len(made.headers["X-Request-ID"]) == 32  # nginx's $request_id, passed on


def test_an_unusable_request_id_is_replaced_at_the_ingress(agora):
    resp = agora.get("/api/v1/products", headers={"X-Request-ID": "x" * 500})
    assert resp.status_code == 200
    assert resp.headers["X-Request-ID"] != "x" * 500 and len(resp.headers["X-Request-ID"]) == 32


@pytest.mark.devstack_ingress
@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_a_method_the_ingress_refuses_is_405_in_shape_with_allow(agora_url, method):
    # nginx refuses these itself, before any route: the service never sees them.
    answer = raw_request(agora_url, f"{method} /api/v1/products HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, body = answer
    assert status == 405, answer
    assert "GET" in headers["allow"] and "POST" in headers["allow"]
    assert json.loads(body)["code"] == "method_not_allowed"
    assert headers["x-request-id"]


@pytest.mark.devstack_ingress
def test_a_body_above_the_ingress_limit_is_413_in_shape(agora_url):
    # Declared, not sent: nginx refuses on the header, before reading the body.
    request = (
        "POST /api/v1/products HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        f"Content-Length: {65 * 1024 * 1024}\r\n\r\n"
    )
    status, headers, body = raw_request(agora_url, request)
    assert status == 413
    assert json.loads(body)["code"] == "payload_too_large" and headers["x-request-id"]


def raw_request(base_url: str, request: str) -> tuple[int, dict[str, str], str]:
    """One request written by hand (methods and headers httpx would not send as such)."""
    url = httpx.URL(base_url)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    status_line, *lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def length(data: bytes) -> int:
    match = re.search(rb"\r\ncontent-length:\s*(\d+)", data.partition(b"\r\n\r\n")[0], re.I)
    return int(match[1]) if match else 0

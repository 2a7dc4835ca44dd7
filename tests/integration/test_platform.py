"""What every service shares, seen through the ingress: ids, errors, docs, Prometheus."""

from __future__ import annotations

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

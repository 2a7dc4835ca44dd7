"""The NetworkPolicies, evaluated: who can reach whom, derived from values.yaml.

A small evaluator of networking.k8s.io/v1 semantics (a pod selected by a policy of a
direction accepts only what one of those policies allows; peers by pod and namespace
selector or ipBlock; ports by number and protocol) applied to the rendered pods.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from .conftest import NAMESPACE, VALUE_SETS, Rendered

WITH_POLICIES = [name for name in VALUE_SETS if name != "no-network-policies"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    labels: dict[str, str] = field(hash=False)
    namespace: str = NAMESPACE
    ip: str | None = None  # an address outside the cluster: no pod, no labels

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


INGRESS_CONTROLLER = Endpoint(
    "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx"
)
KUBE_DNS = Endpoint("coredns", {"k8s-app": "kube-dns"}, namespace="kube-system")
OPERATOR_PROMETHEUS = Endpoint(
    "operator-prometheus", {"app.kubernetes.io/name": "prometheus"}, namespace="monitoring"
)
INTERNET = Endpoint("internet", {}, namespace="", ip="93.184.216.34")


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def peer_matches(peer: dict[str, Any], endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        if endpoint.ip is None:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(endpoint.ip)
        excluded = any(address in ipaddress.ip_network(c) for c in block.get("except", []))
        return address in ipaddress.ip_network(block["cidr"]) and not excluded
    if endpoint.ip is not None:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], endpoint.namespace_labels):
            return False
    elif endpoint.namespace != NAMESPACE:
        return False
    return selector_matches(peer.get("podSelector", {}), endpoint.labels)


def port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports
    )


def direction_allows(
    policies: list[dict[str, Any]],
    direction: str,
    subject: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    """Ingress to `subject` from `other`, or egress from `subject` to `other`."""
    if subject.ip is not None or subject.namespace != NAMESPACE:
        return True  # not governed by this release's policies
    peers_key = "from" if direction == "Ingress" else "to"
    governing = [
        p
        for p in policies
        if direction in p["spec"]["policyTypes"]
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not governing:
        return True
    return any(
        port_matches(rule, port, protocol)
        and (peers_key not in rule or any(peer_matches(peer, other) for peer in rule[peers_key]))
        for policy in governing
        for rule in policy["spec"].get(direction.lower(), [])
    )


def allowed(
    rendered: Rendered, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    policies = rendered.of_kind("NetworkPolicy")
    return direction_allows(policies, "Egress", source, target, port, protocol) and (
        direction_allows(policies, "Ingress", target, source, port, protocol)
    )


def pods(rendered: Rendered) -> dict[str, Endpoint]:
    """Every pod template of the render, by its app.kubernetes.io/name."""
    return {
        pod["metadata"]["labels"]["app.kubernetes.io/name"]: Endpoint(
            owner["metadata"]["name"], pod["metadata"]["labels"]
        )
        for owner, pod in rendered.pod_templates()
    }


@pytest.fixture(params=WITH_POLICIES)
def guarded(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    return renders[request.param]


def test_every_pod_is_denied_by_default_and_given_its_own_policy(guarded: Rendered) -> None:
    policies = guarded.of_kind("NetworkPolicy")
    deny = guarded.get("NetworkPolicy", "agora-default-deny")["spec"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    shared = {"agora-default-deny", "agora-dns"}
    for name, pod in pods(guarded).items():
        assert selector_matches(deny["podSelector"], pod.labels), name
        own = [
            p
            for p in policies
            if p["metadata"]["name"] not in shared
            and selector_matches(p["spec"]["podSelector"], pod.labels)
        ]
        assert own, f"{name} has no policy of its own"


def test_services_reach_exactly_their_upstreams(guarded: Rendered) -> None:
    endpoints = pods(guarded)
    for caller in guarded.workloads:
        for callee in guarded.workloads:
            reach = allowed(guarded, endpoints[caller.name], endpoints[callee.name], callee.port)
            assert reach == (callee.name in caller.upstreams), f"{caller.name} -> {callee.name}"


def test_the_ingress_controller_reaches_the_routed_services_only(guarded: Rendered) -> None:
    endpoints = pods(guarded)
    backend = guarded.values["ingress"]["defaultBackend"]  # routed to, for what none claims
    for workload in guarded.workloads:
        reach = allowed(guarded, INGRESS_CONTROLLER, endpoints[workload.name], workload.port)
        routed = bool(workload.ingress or workload.websockets) or workload.name == backend
        assert reach == routed, workload.name
    for backend, port in (("postgresql", 5432), ("redis", 6379)):
        if backend in endpoints:
            assert not allowed(guarded, INGRESS_CONTROLLER, endpoints[backend], port)


def test_prometheus_scrapes_every_service_port(guarded: Rendered) -> None:
    endpoints = pods(guarded)
    scrapers = [OPERATOR_PROMETHEUS] if guarded.values["networkPolicy"]["extraPrometheus"] else []
    if guarded.values["prometheus"]["enabled"]:
        scrapers.append(endpoints["prometheus"])
    for scraper in scrapers:
        for workload in guarded.workloads:
            assert allowed(guarded, scraper, endpoints[workload.name], workload.port)
            assert not allowed(guarded, scraper, endpoints[workload.name], workload.port + 1)
    if OPERATOR_PROMETHEUS not in scrapers:
        for workload in guarded.workloads:
            pod = endpoints[workload.name]
            assert not allowed(guarded, OPERATOR_PROMETHEUS, pod, workload.port)


def test_only_the_services_that_use_them_reach_postgres_and_redis(guarded: Rendered) -> None:
    endpoints = pods(guarded)
    for backend, port, flag in (("postgresql", 5432, "postgres"), ("redis", 6379, "redis")):
        if backend not in endpoints:  # external: reached outside the cluster
            target = Endpoint("external", {}, namespace="", ip="10.20.30.40")
            port = guarded.values[f"external{'Database' if flag == 'postgres' else 'Redis'}"][
                "port"
            ]
        else:
            target = endpoints[backend]
        for workload in guarded.workloads:
            reach = allowed(guarded, endpoints[workload.name], target, port)
            assert reach == getattr(workload, flag), f"{workload.name} -> {backend}"
    if "migrations" in endpoints and "postgresql" in endpoints:
        assert allowed(guarded, endpoints["migrations"], endpoints["postgresql"], 5432)
        assert not allowed(guarded, endpoints["migrations"], INTERNET, 443)


def test_every_pod_resolves_names(guarded: Rendered) -> None:
    for name, pod in pods(guarded).items():
        assert allowed(guarded, pod, KUBE_DNS, 53, "UDP"), name
        assert allowed(guarded, pod, KUBE_DNS, 53, "TCP"), name


def test_helm_test_reaches_every_service(guarded: Rendered) -> None:
    endpoints = pods(guarded)
    for workload in guarded.workloads:
        assert allowed(guarded, endpoints["tests"], endpoints[workload.name], workload.port)


def test_nothing_else_gets_in_or_out(guarded: Rendered) -> None:
    endpoints = pods(guarded)
    for workload in guarded.workloads:
        stranger = Endpoint("stranger", endpoints["tests"].labels, namespace="elsewhere")
        assert not allowed(guarded, stranger, endpoints[workload.name], workload.port)
        reach_internet = allowed(guarded, endpoints[workload.name], INTERNET, 443)
        assert reach_internet == bool(workload.raw["egress"]), workload.name


def test_policies_can_be_switched_off(renders: dict[str, Rendered]) -> None:
    assert renders["no-network-policies"].of_kind("NetworkPolicy") == []


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1", "10.96.0.1", "10.244.1.5",  # private; kind's service and pod ranges
        "172.16.0.1", "192.168.1.1", "100.64.0.1", "127.0.0.1", "0.0.0.0",
        "169.254.169.254",  # cloud metadata
        "224.0.0.1", "240.0.0.1",
        "fd00::1", "fe80::1", "::1", "::ffff:10.0.0.1",
    ],
)  # fmt: skip
def test_crawler_workers_reach_the_public_web_only(guarded: Rendered, address: str) -> None:
    if "crawler-worker" not in pods(guarded):
        pytest.skip("crawler-worker is not enabled in this value set")
    worker = pods(guarded)["crawler-worker"]
    inside = Endpoint("private", {}, namespace="", ip=address)
    for port in (80, 443, 8080):
        assert not allowed(guarded, worker, inside, port), (address, port)
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        outside = Endpoint("public", {}, namespace="", ip=public)
        assert allowed(guarded, worker, outside, 80) and allowed(guarded, worker, outside, 443)
        assert not allowed(guarded, worker, outside, 22)
        assert not allowed(guarded, worker, outside, 8080)

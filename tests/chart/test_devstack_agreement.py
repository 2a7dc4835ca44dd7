"""devstack and the chart run the same topology: the routes, replicas, commands, probes,
environment and Prometheus labels devstack derives from values.yaml are the ones the
rendered Deployments, Services, Ingress and Prometheus configuration carry.

The environment differs only in addresses (127.0.0.1:<port> against Service names),
which both sides map to the service they point at before comparing the rest exactly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from devstack import render as devstack_render
from devstack.layout import Layout
from devstack.postgres import Server

from .conftest import Rendered

# What the platform decides differently on each side: where to listen and keep files.
LOCAL_SETTINGS = (
    "BIND_HOST",
    "PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "AUTH_PUBLIC_KEY_FILE",
    "AUTH_PRIVATE_KEY_FILE",
    "IMPERSONATION_CREDENTIAL_FILE",
)
# Chart-only carriers of secrets (devstack embeds the password in the URL instead), and
# the route table of the ingress's error backend (devstack's nginx answers those errors).
CHART_ONLY = ("PGPASSWORD", "REDIS_PASSWORD", "INGRESS_ROUTES")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)


def normalise(env: dict[str, str], addresses: dict[str, str]) -> dict[str, str]:
    """Addresses replaced by what they point at; credentials and local settings dropped."""
    result = {}
    for key, value in env.items():
        if key in CHART_ONLY:
            continue
        if key in LOCAL_SETTINGS:
            result[key] = "<local>"
            continue
        if "://" in value:
            url = urlsplit(value.replace("$(REDIS_PASSWORD)", "password"))
            target = addresses.get(f"{url.hostname}:{url.port}")
            if target:
                value = urlunsplit((url.scheme, target, url.path, url.query, url.fragment))
        result[key] = value
    return result


def devstack_addresses(layout: Layout, rendered: Rendered) -> dict[str, str]:
    urls = layout.service_urls(rendered.workloads)
    addresses = {urlsplit(url).netloc: name for name, url in urls.items()}
    addresses[f"127.0.0.1:{layout.postgres_port}"] = "<postgres>"
    addresses[f"127.0.0.1:{layout.redis_port}"] = "<redis>"
    return addresses


def chart_addresses(rendered: Rendered) -> dict[str, str]:
    addresses = {
        f"{s['metadata']['name']}:{port['port']}": s["metadata"]["name"]
        for s in rendered.of_kind("Service")
        for port in s["spec"]["ports"]
    }
    addresses["agora-postgresql:5432"] = "<postgres>"
    addresses["agora-redis:6379"] = "<redis>"
    return addresses


def test_every_replica_gets_the_same_environment(layout: Layout, default_render: Rendered) -> None:
    rendered = default_render
    server = Server(layout.postgres_port, layout.socket_dir)
    dsns = {w.name: server.dsn(w.name, "devstack-password") for w in rendered.workloads}
    urls = layout.service_urls(rendered.workloads)
    for replica in layout.replicas(rendered.workloads):
        local = devstack_render.replica_env(layout, replica, urls, dsns)
        deployment = rendered.get("Deployment", replica.workload.name)
        cluster = rendered.env_of(deployment)
        assert normalise(cluster, chart_addresses(rendered)) == normalise(
            local, devstack_addresses(layout, rendered)
        ), replica.name
        assert cluster["PORT"] == str(replica.workload.port)


def test_same_replicas_commands_and_probes(layout: Layout, default_render: Rendered) -> None:
    replicas = layout.replicas(default_render.workloads)
    for workload in default_render.workloads:
        deployment = default_render.get("Deployment", workload.name)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        count = sum(r.workload.name == workload.name for r in replicas)
        assert deployment["spec"]["replicas"] == count
        assert container["command"] == workload.command
        probes = {k: container[f"{k}Probe"]["httpGet"]["path"] for k in workload.probes}
        assert probes == workload.probes
        assert container["ports"][0]["containerPort"] == workload.port


def test_same_routes(layout: Layout, default_render: Rendered) -> None:
    """The same prefixes to the same services; the WebSocket ones, on both sides, with
    what a WebSocket needs (an upgrade through nginx, long timeouts on both)."""
    nginx = devstack_render.nginx_conf(layout, default_render.workloads)
    ingress_server = nginx.split("# the ingress", 1)[1].split("# the Service of", 1)[0]
    upstream_names = {w.name.replace("-", "_"): w.name for w in default_render.workloads}

    def local(websocket: bool) -> dict[str, str]:
        pattern = r"location (?:= )?(/\S*) \{ proxy_pass http://svc_(\w+);( [^}]+)? \}"
        return {
            path: upstream_names[upstream]
            for path, upstream, extra in re.findall(pattern, ingress_server)
            if (path == "/" or not path.endswith("/"))  # "= /x" and "/x/" are one prefix
            and bool(extra) == websocket
        }

    def cluster(*names: str) -> dict[str, str]:
        paths = [
            path
            for name in names
            if (ingress := default_render.find("Ingress", name))
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        ]
        assert all(p["pathType"] == "Prefix" for p in paths)
        routes = {p["path"]: p["backend"]["service"]["name"] for p in paths}
        assert len(routes) == len(paths)  # no prefix on two Ingresses
        return routes

    # the HTTP paths: on the Ingress with error pages, or the one of the services that
    # answer their 5xx themselves (test_ingress)
    http = cluster("agora", "agora-own-errors")
    local_http = local(websocket=False)
    # What no service claims: devstack's nginx answers it itself, the cluster's "/" path
    # sends it to ingress.defaultBackend; both in the error shape (test_ingress).
    if "/" not in local_http:
        assert http.pop("/") == default_render.values["ingress"]["defaultBackend"]
        own_answer = r"location / \{ default_type application/json; return 404 "
        assert re.search(own_answer, ingress_server)
    assert http == local_http
    assert cluster("agora-websockets") == local(websocket=True)
    for line in ingress_server.splitlines():
        if "$http_upgrade" in line:
            assert "proxy_set_header Connection $connection_upgrade;" in line
            assert "proxy_read_timeout 3600s;" in line and "proxy_send_timeout 3600s;" in line
    annotations = default_render.get("Ingress", "agora-websockets")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"


# ---------------------------------------------------------------- Prometheus


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus relabelling (replace, keep, drop), enough for the chart's rules."""
    labels = dict(labels)
    for rule in rules:
        sources = rule.get("source_labels", [])
        value = rule.get("separator", ";").join(labels.get(s, "") for s in sources)
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = rule.get("replacement", "$1")
            labels[rule["target_label"]] = re.sub(r"\$(\d+)", r"\\\1", replacement)
            labels[rule["target_label"]] = match.expand(labels[rule["target_label"]])
    return {k: v for k, v in labels.items() if not k.startswith("__meta_")}


def discovered(pod: dict[str, Any], name: str, ip: str, port: int) -> dict[str, str]:
    """The target kubernetes_sd (role: pod) gives Prometheus for one container port."""

    def sanitise(key: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", "_", key)

    meta = pod["metadata"]
    labels = {
        "__address__": f"{ip}:{port}",
        "__metrics_path__": "/metrics",
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for key, value in meta.get("labels", {}).items():
        labels[f"__meta_kubernetes_pod_label_{sanitise(key)}"] = value
    for key, value in meta.get("annotations", {}).items():
        labels[f"__meta_kubernetes_pod_annotation_{sanitise(key)}"] = value
    return labels


def test_prometheus_labels_targets_like_devstack(layout: Layout, default_render: Rendered) -> None:
    config = yaml.safe_load(
        default_render.get("ConfigMap", "agora-prometheus")["data"]["prometheus.yml"]
    )
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "agora"]
    local = yaml.safe_load(devstack_render.prometheus_yml(layout, default_render.workloads))
    (local_job,) = [j for j in local["scrape_configs"] if j["job_name"] == "agora"]
    expected = []
    for target in local_job["static_configs"]:
        replica = target["labels"]["pod"]
        app = target["labels"]["app"]
        expected.append({"job": "agora", "app": app, "pod": replica, "track": "stable"})
    seen = []
    for index, (owner, pod) in enumerate(default_render.pod_templates()):
        name = owner["metadata"]["name"]
        container = pod["spec"].get("containers", [])[0]
        for port in container.get("ports", []):
            ip = f"10.0.0.{index + 1}"
            labels = discovered(pod, name, ip, port["containerPort"])
            target = relabel(labels, job["relabel_configs"])
            if target is None:
                continue
            assert target["__address__"] == f"{ip}:{port['containerPort']}"
            assert target["__metrics_path__"] == local_job["metrics_path"]
            seen.append(
                {
                    "job": "agora",
                    "app": target["app"],
                    "pod": target["pod"],
                    "track": target["track"],
                }
            )
    # devstack names replica pods <service>-<n>, Kubernetes <deployment>-<hash>: compare apps
    # per pod template, and that each target is labelled with its own pod.
    assert sorted({t["app"] for t in seen}) == sorted({t["app"] for t in expected})
    assert all(t["pod"] == t["app"] for t in seen)
    assert {t["track"] for t in seen} == {t["track"] for t in expected} == {"stable"}
    assert set(local_job["static_configs"][0]["labels"]) == {"app", "pod", "track"}

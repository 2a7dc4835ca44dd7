"""What the chart renders for operating Agora: the rule files (one copy, the same SLO
objectives devstack renders), the scrape configs and their RBAC, the exporter sidecars,
and the Grafana dashboard, checked against grafana-foundation-sdk's dashboard models."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from devstack import monitoring

from .conftest import NAMESPACE, Rendered, render
from .test_devstack_agreement import discovered, relabel

PANELS = monitoring.load_panels()


def prometheus_config(rendered: Rendered) -> dict[str, Any]:
    return yaml.safe_load(rendered.get("ConfigMap", "agora-prometheus")["data"]["prometheus.yml"])


def jobs(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in prometheus_config(rendered)["scrape_configs"]}


def prometheus_pod(rendered: Rendered) -> dict[str, Any]:
    return rendered.get("Deployment", "agora-prometheus")["spec"]["template"]


# ---------------------------------------------------------------- rules


def test_the_rule_files_are_shipped_as_they_are(default_render: Rendered) -> None:
    data = default_render.get("ConfigMap", "agora-prometheus-rules")["data"]
    for path in monitoring.RULE_FILES:
        assert data[path.name] == path.read_text(), path.name
    # the objectives: the very rules devstack renders from the same values
    assert yaml.safe_load(data["slo.yaml"]) == monitoring.slo_rules(default_render.workloads)


def test_prometheus_loads_the_mounted_rules(default_render: Rendered) -> None:
    config = prometheus_config(default_render)
    pod = prometheus_pod(default_render)
    (mount,) = [m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "rules"]
    assert config["rule_files"] == [f"{mount['mountPath']}/*.yaml"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "rules"]
    assert volume["configMap"]["name"] == "agora-prometheus-rules"
    assert "checksum/rules" in pod["metadata"]["annotations"]  # a rule change rolls it


def test_objectives_follow_each_services_values(tmp_path) -> None:
    values = tmp_path / "slo.yaml"
    values.write_text("services:\n  calc:\n    slo: {availability: 99.5, latencyMs: 1000}\n")
    rendered = render("slo", [values])
    slo = yaml.safe_load(rendered.get("ConfigMap", "agora-prometheus-rules")["data"]["slo.yaml"])
    assert slo == monitoring.slo_rules(rendered.workloads)
    calc = {r["record"]: r for r in slo["groups"][0]["rules"] if r["labels"]["service"] == "calc"}
    assert calc["service:slo_availability_objective:ratio"]["expr"] == "vector(99.5 / 100)"
    assert calc["service:slo_latency_threshold:seconds"]["labels"]["le"] == "1.0"


def test_latency_objectives_must_be_a_bucket_bound() -> None:
    with pytest.raises(AssertionError, match="latencyMs"):
        render("bad-slo", [], "--set", "default.slo.latencyMs=300")


def test_the_operator_gets_the_same_rules_as_a_prometheus_rule(renders) -> None:
    rule = renders["operator"].get("PrometheusRule", "agora")
    expected = [g for p in monitoring.RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]]
    expected += monitoring.slo_rules(renders["operator"].workloads)["groups"]
    key = lambda group: group["name"]  # noqa: E731
    assert sorted(rule["spec"]["groups"], key=key) == sorted(expected, key=key)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_no_rules_when_switched_off(renders) -> None:
    off = renders["no-monitoring"]
    assert off.find("ConfigMap", "agora-prometheus-rules") is None
    assert "rule_files" not in prometheus_config(off)


# ---------------------------------------------------------------- scrape configs


def test_every_pod_is_labelled_with_its_track(default_render: Rendered) -> None:
    job = jobs(default_render)["agora"]
    deployment = copy.deepcopy(default_render.get("Deployment", "catalog"))
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["track"] == "stable"
    assert "track" not in deployment["spec"]["selector"]["matchLabels"]
    target = relabel(discovered(pod, "catalog-7d9-x2", "10.0.0.9", 8000), job["relabel_configs"])
    assert target["track"] == "stable"
    pod["metadata"]["labels"]["track"] = "canary"
    target = relabel(discovered(pod, "catalog-5c1-y3", "10.0.0.8", 8000), job["relabel_configs"])
    assert target["track"] == "canary"


@pytest.mark.parametrize(
    ("value_set", "expected"),
    [
        ("default", {"agora", "prometheus", "ingress-controller", "cadvisor"}),
        ("monitoring", {"agora", "prometheus", "ingress-controller", "cadvisor",
                        "kube-state-metrics"}),
        ("no-monitoring", {"agora", "prometheus"}),
    ],
)  # fmt: skip
def test_each_scrape_config_is_switchable(renders, value_set: str, expected: set[str]) -> None:
    assert set(jobs(renders[value_set])) == expected


def test_the_ingress_controller_is_scraped_on_its_metrics_port(default_render) -> None:
    job = jobs(default_render)["ingress-controller"]
    assert job["kubernetes_sd_configs"] == [
        {"role": "pod", "namespaces": {"names": ["ingress-nginx"]}}
    ]
    controller = {
        "metadata": {
            "labels": {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "controller",
            }
        }
    }
    target = relabel(discovered(controller, "ingress-nginx-controller-1", "10.1.0.5", 80),
                     job["relabel_configs"])  # fmt: skip
    assert target["__address__"] == "10.1.0.5:10254"
    webhook = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "webhook"}
    admission = {"metadata": {"labels": webhook}}
    assert relabel(discovered(admission, "ingress-nginx-admission", "10.1.0.6", 80),
                   job["relabel_configs"]) is None  # fmt: skip


def test_cadvisor_is_read_through_the_kubelet_with_the_pods_token(default_render) -> None:
    job = jobs(default_render)["cadvisor"]
    assert job["metrics_path"] == "/metrics/cadvisor" and job["scheme"] == "https"
    assert job["kubernetes_sd_configs"] == [{"role": "node"}]
    token = job["authorization"]["credentials_file"]
    assert token == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    (keep,) = job["metric_relabel_configs"]
    assert (keep["source_labels"], keep["regex"], keep["action"]) == (
        ["namespace"], NAMESPACE, "keep")  # fmt: skip


def rbac(rendered: Rendered) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {
        (o["kind"], o["metadata"].get("namespace", "")): o["rules"]
        for o in rendered.objects
        if o["kind"] in ("Role", "ClusterRole") and "prometheus" in o["metadata"]["name"]
    }


def test_rbac_grants_each_scrape_what_it_reads_and_nothing_more(renders) -> None:
    pods = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    endpoints = [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get", "list", "watch"]}]
    nodes = [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
    ]
    assert rbac(renders["monitoring"]) == {
        ("Role", NAMESPACE): pods,
        ("Role", "ingress-nginx"): pods,
        ("Role", "kube-system"): endpoints,
        ("ClusterRole", ""): nodes,
    }
    assert rbac(renders["no-monitoring"]) == {("Role", NAMESPACE): pods}
    for rendered in (renders["monitoring"], renders["default"]):
        for binding in rendered.of_kind("RoleBinding") + rendered.of_kind("ClusterRoleBinding"):
            (subject,) = binding["subjects"]
            assert (subject["name"], subject["namespace"]) == ("agora-prometheus", NAMESPACE)


def test_prometheus_may_reach_what_it_scrapes(renders) -> None:
    policy = renders["monitoring"].get("NetworkPolicy", "agora-prometheus")
    egress = policy["spec"]["egress"]
    ports = {port["port"] for rule in egress for port in rule["ports"]}
    assert {10250, 10254, "http-metrics", 9187, 9121} <= ports
    assert not {10250, 10254} & {
        port["port"]
        for rule in renders["no-monitoring"].get("NetworkPolicy", "agora-prometheus")["spec"][
            "egress"
        ]
        for port in rule["ports"]
    }


# ---------------------------------------------------------------- exporter sidecars


@pytest.mark.parametrize(("backend", "port"), [("postgresql", 9187), ("redis", 9121)])
def test_exporter_sidecars_are_optional_and_scraped(renders, backend: str, port: int) -> None:
    assert [
        c["name"]
        for c in renders["default"].get("StatefulSet", f"agora-{backend}")["spec"]["template"][
            "spec"
        ]["containers"]
    ] == [backend]
    pod = renders["monitoring"].get("StatefulSet", f"agora-{backend}")["spec"]["template"]
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == "metrics")
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    target = relabel(discovered(pod, f"agora-{backend}-0", "10.0.0.7", port),
                     jobs(renders["monitoring"])["agora"]["relabel_configs"])  # fmt: skip
    assert (target["__address__"], target["app"]) == (f"10.0.0.7:{port}", backend)
    policy = renders["monitoring"].get("NetworkPolicy", f"agora-{backend}")
    (scrape,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == port]
    assert scrape["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "prometheus"


def test_redis_refuses_writes_past_its_max_memory(default_render) -> None:
    redis = default_render.get("StatefulSet", "agora-redis")["spec"]["template"]["spec"]
    args = redis["containers"][0]["args"]
    assert args[args.index("--maxmemory") + 1] == "192mb"


# ---------------------------------------------------------------- the dashboard


def dashboard(rendered: Rendered) -> dict[str, Any]:
    config_map = rendered.get("ConfigMap", "agora-dashboard")
    return json.loads(config_map["data"]["agora.json"])


def contained(small: Any, big: Any, path: str = "") -> list[str]:
    """Where `small` has something `big` lacks (big may add defaults)."""
    if isinstance(small, dict):
        if not isinstance(big, dict):
            return [path]
        return [p for k, v in small.items() for p in contained(v, big.get(k, ...), f"{path}.{k}")]
    if isinstance(small, list):
        if not isinstance(big, list) or len(small) != len(big):
            return [path]
        pairs = enumerate(zip(small, big, strict=True))
        return [p for i, (a, b) in pairs for p in contained(a, b, f"{path}[{i}]")]
    return [] if small == big else [path]


@pytest.mark.parametrize("value_set", ["default", "monitoring"])
def test_the_dashboard_is_a_valid_grafana_dashboard(renders, value_set: str) -> None:
    """Decoded by Grafana's own models (grafana-foundation-sdk) and encoded again, nothing
    is lost: every field is one the dashboard schema knows, with a value of its type."""
    register_default_plugins()
    document = dashboard(renders[value_set])
    model = Dashboard.from_json(document)
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert contained(document, again) == []
    assert model.title == "Agora" and model.uid == "agora"


def test_the_dashboard_has_every_panel_in_its_cluster_form(default_render) -> None:
    panels = dashboard(default_render)["panels"]
    rows = [p for p in panels if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["Overview", "$service"]
    assert rows[1]["repeat"] == "service"  # one row per service chosen
    graphs = [p for p in panels if p["type"] == "timeseries"]
    expected = [p for section in ("overview", "service") for p in PANELS[section]]
    assert [g["title"] for g in graphs] == [p["title"] for p in expected]
    for graph, panel in zip(graphs, expected, strict=True):
        forms = [t.get("cluster", t.get("expr")) for t in panel["targets"]]
        assert [t["expr"] for t in graph["targets"]] == [f for f in forms if f]
        assert graph["fieldConfig"]["defaults"]["unit"] == PANELS["units"][panel["unit"]]["grafana"]
        assert len({t["refId"] for t in graph["targets"]}) == len(graph["targets"])
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    variables = {v["name"]: v for v in dashboard(default_render)["templating"]["list"]}
    assert variables["namespace"]["query"] == NAMESPACE
    assert variables["service"]["includeAll"] and variables["service"]["multi"]


def test_the_dashboard_is_labelled_for_grafanas_sidecar(renders) -> None:
    default = renders["default"].get("ConfigMap", "agora-dashboard")
    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert default["metadata"]["namespace"] == NAMESPACE
    elsewhere = renders["monitoring"].get("ConfigMap", "agora-dashboard")["metadata"]
    assert elsewhere["namespace"] == "monitoring"
    assert elsewhere["annotations"] == {"grafana_folder": "Agora"}
    assert renders["no-monitoring"].find("ConfigMap", "agora-dashboard") is None


def test_devstack_and_the_dashboard_show_the_same_panels(default_render) -> None:
    pages = monitoring.console_pages(default_render.workloads)
    titles = [p["title"] for p in dashboard(default_render)["panels"] if p["type"] != "row"]
    overview = [t for t in titles[: len(PANELS["overview"])]]
    for title in overview:
        assert f"<h3>{title}</h3>" in pages["agora.html"].replace("&#x27;", "'")

"""helm lint, the values schema, and the Kubernetes API schemas, over every value set."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from devstack.topology import REPO

from .conftest import CHART, VALUE_SETS, Rendered, helm, render, render_text, value_args


def pinned_node_version() -> str:
    """The Kubernetes version of the kind node image k8s/kind.yaml pins (by digest)."""
    (node,) = yaml.safe_load((REPO / "k8s" / "kind.yaml").read_text())["nodes"]
    match = re.fullmatch(r"kindest/node:v(\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}", node["image"])
    assert match, f"the kind node image is not pinned by version and digest: {node['image']}"
    return match.group(1)


def lowest_claimed_version() -> str:
    """The lowest Kubernetes version Chart.yaml's kubeVersion (>=X.Y.Z-0) admits."""
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=(\d+\.\d+\.\d+)-0", claim)
    assert match, f"kubeVersion {claim!r} is not of the form >=X.Y.Z-0"
    return match.group(1)


def minor_of(version: str) -> str:
    return ".".join(version.split(".")[:2]) + ".0"


# The API versions checked: the lowest the chart claims, the kind node's and the newest
# minor released.
KUBERNETES_VERSIONS = tuple(
    sorted({minor_of(lowest_claimed_version()), minor_of(pinned_node_version()), "1.35.0"})
)
# Custom resources have no schema in kubernetes-validate; their fields are asserted below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_helm_lint_strict(value_set: str) -> None:
    result = helm("lint", "--strict", CHART, *value_args(VALUE_SETS[value_set]), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(rendered: Rendered, version: str) -> None:
    errors = []
    for obj in rendered.objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert not errors, "\n".join(errors)


def test_the_service_monitor_selects_the_service_ports(renders: dict[str, Rendered]) -> None:
    monitor = renders["operator"].get("ServiceMonitor", "agora")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        s
        for s in renders["operator"].of_kind("Service")
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    expected = sorted(w.name for w in renders["operator"].workloads)
    assert sorted(s["metadata"]["name"] for s in services) == expected
    assert all(s["spec"]["ports"][0]["name"] == "http" for s in services)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"app", "pod", "track", "variant"}


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("services.catalog.replica=3", "additional properties 'replica' not allowed"),
        ("services.catalog.port=http", "want integer"),
        ("default.autoscaling.enabled=yes", "want boolean"),
        ("services.catalog.env.LOG_LEVEL=null", "want string"),
        ("ingress.hosts=x", "additional properties 'hosts' not allowed"),
        ("postgresql.password=secret", "additional properties 'password' not allowed"),
        ("services.Catalog.command={x}", "does not match pattern"),
        ("services.crawler-worker.database=Crawler", "database"),
    ],
)
def test_the_values_schema_rejects_typos(setting: str, complaint: str) -> None:
    result = helm("template", "agora", CHART, "--set", setting, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("services.catalog.upstreams={nowhere}", "nowhere is not a service"),
        ("services.users.ingress={/api/v1/brands/}", "claimed by both catalog and users"),
        ("postgresql.enabled=false", "externalDatabase.host is required"),
        ("services.crawler-worker.database=ledger", "database: ledger is not a service"),
        ("services.calc.database=catalog", "calc.database needs postgres: true"),
    ],
)
def test_inconsistent_values_fail_with_a_message(setting: str, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        render_text("--set", setting)


@pytest.mark.parametrize("value_set", ["default", "no-prometheus"])
def test_notes_tell_how_to_reach_the_ingress_and_prometheus(value_set: str) -> None:
    result = helm(
        "install", "agora", CHART, "--dry-run=client", "--namespace", "agora",
        "--set", "ingress.publicUrl=http://localhost:8090/", *value_args(VALUE_SETS[value_set]),
    )  # fmt: skip
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "http://localhost:8090/" in notes
    assert "/api/v1/brands, /api/v1/products, /api/v1/catalog" in notes
    prometheus = "kubectl -n agora port-forward service/agora-prometheus 9090:9090"
    assert (prometheus in notes) == (value_set == "default")
    assert "helm test agora -n agora" in notes


@pytest.mark.parametrize("version", [pinned_node_version(), lowest_claimed_version()])
def test_the_chart_installs_on_the_pinned_node_and_the_lowest_claimed_version(
    version: str,
) -> None:
    """helm checks Chart.yaml's kubeVersion against the cluster's (--kube-version here), and
    .Capabilities answers with it: the render must succeed and pass that version's schemas."""
    rendered = render(f"k8s-{version}", VALUE_SETS["kind"], "--kube-version", version)
    for obj in rendered.objects:
        kubernetes_validate.validate(obj, minor_of(version), strict=True)


def test_older_kubernetes_is_refused() -> None:
    major, minor, _ = lowest_claimed_version().split(".")
    older = f"{major}.{int(minor) - 1}.99"
    with pytest.raises(AssertionError, match="incompatible with Kubernetes"):
        render_text("--kube-version", older)

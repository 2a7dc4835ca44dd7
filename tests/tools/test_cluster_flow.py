"""`make deploy`, `make port-forward` and `make test-cluster` (tools/cluster.sh), dry: the
exact commands, in order, with the pinned versions, against stand-ins (conftest.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.topology import REPO
from tests.chart.conftest import CHART, helm_binary

from .conftest import Run, without

NODE_IMAGE = (
    "kindest/node:v1.33.7@sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040"
)
INGRESS_NGINX_MANIFEST = (
    "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.13.9"
    "/deploy/static/provider/kind/deploy.yaml"
)
KIND = ["--kube-context", "kind-agora"]


def chart_args(tag: str) -> list[str]:
    return [
        "helm/agora", "--namespace", "agora", "--values", "k8s/values-kind.yaml",
        "--set-string", f"image.tag={tag}",
        "--set-string", "ingress.publicUrl=http://localhost:8090/",
    ]  # fmt: skip


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    """The real helm, from the repository (where the deploy's relative paths point)."""
    return subprocess.run(
        [helm_binary(), "template", *args], capture_output=True, text=True, cwd=REPO, check=False
    )


def the_tag(run: Run) -> str:
    (tag,) = {c[3].split(":")[1] for c in run.calls if c[:2] == ["docker", "tag"]}
    assert re.fullmatch(r"[0-9a-f]{12}", tag), tag
    return tag


@pytest.mark.parametrize("shell", [("bash",), ("bash", "--posix")], ids=["bash", "posix"])
def test_deploy_runs_exactly_these_commands_in_order(cluster_sh, shell) -> None:
    run = cluster_sh("deploy", shell=shell)
    assert run.returncode == 0, run.stderr
    tag = the_tag(run)
    assert run.calls == [
        ["docker", "info"],
        ["kind", "version"],
        # tools/install-k8s-tools.sh: the pinned helm and kubectl are there, nothing fetched
        ["helm", "version", "--template", "{{.Version}}"],
        ["kubectl", "version", "--client"],
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--name", "agora", "--config", "-"],
        # tools/build-image.sh, then the tag naming the build inputs (tools/image-tag.sh)
        ["docker", "build", "--quiet", "--network", "host", "--target", "build",
         "--tag", "agora-build:latest", "."],
        ["docker", "build", "--quiet", "--network", "host", "--tag", "agora:dev", "."],
        ["docker", "image", "prune", "--force", "--filter", "label=org.agora.image"],
        ["docker", "image", "inspect", "--format", "{{.Id}}", "python:3.11-slim-bookworm"],
        ["docker", "tag", "agora:dev", f"agora:{tag}"],
        ["kind", "load", "docker-image", f"agora:{tag}", "--name", "agora"],
        ["docker", "image", "ls", "agora", "--format", "{{.Tag}}"],
        ["docker", "rmi", "agora:0123456789ab"],  # an earlier deploy's tag
        # rendered before anything changes; it names the images to preload
        ["helm", "template", "agora", *chart_args(tag)],
        ["docker", "image", "inspect", "postgres:17.6-bookworm"],
        ["kind", "load", "docker-image", "postgres:17.6-bookworm", "--name", "agora"],
        ["docker", "image", "inspect", "prom/prometheus:v3.5.0"],
        ["kind", "load", "docker-image", "prom/prometheus:v3.5.0", "--name", "agora"],
        ["docker", "image", "inspect", "redis:7.4.5-bookworm"],
        ["kind", "load", "docker-image", "redis:7.4.5-bookworm", "--name", "agora"],
        ["kubectl", "--context", "kind-agora", "apply", "-f", INGRESS_NGINX_MANIFEST],
        ["kubectl", "--context", "kind-agora", "-n", "ingress-nginx", "rollout", "status",
         "deployment/ingress-nginx-controller", "--timeout=300s"],
        ["kubectl", "--context", "kind-agora", "apply", "--dry-run=server", "-f", "-"],
        ["helm", "upgrade", "--install", "agora", *chart_args(tag), *KIND,
         "--create-namespace", "--wait", "--timeout", "10m"],
        ["helm", "test", "agora", *KIND, "--namespace", "agora", "--logs"],
        ["kind", "get", "nodes", "--name", "agora"],
        ["docker", "exec", "agora-control-plane", "crictl", "images"],
        ["docker", "exec", "agora-control-plane", "crictl", "rmi",
         "docker.io/library/agora:0123456789ab"],
    ]  # fmt: skip
    # the cluster: the pinned node image, the ingress ports on the host's loopback only
    (node,) = yaml.safe_load(run.stdins[5])["nodes"]
    assert node["image"] == NODE_IMAGE
    ports = node["extraPortMappings"]
    mappings = {(m["containerPort"], m["hostPort"], m["listenAddress"]) for m in ports}
    assert mappings == {(80, 8090, "127.0.0.1"), (443, 8453, "127.0.0.1")}
    # the admission webhook is probed with an Ingress it must accept before the chart's
    probe = yaml.safe_load(run.stdins[23])
    assert probe["kind"] == "Ingress" and probe["spec"]["ingressClassName"] == "nginx"
    assert "AGORA_URL (ingress)  http://localhost:8090" in run.stdout


def test_deploy_settings_reach_the_commands(cluster_sh) -> None:
    run = cluster_sh(
        "deploy", KIND_CLUSTER="lab", KIND_HTTP_PORT="9180", KIND_HTTPS_PORT="9543",
        NAMESPACE="shop", RELEASE="demo", FAKE_MISSING_IMAGES="redis:7.4.5-bookworm",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert ["kind", "create", "cluster", "--name", "lab", "--config", "-"] in run.calls
    (node,) = yaml.safe_load(run.stdins[5])["nodes"]
    assert {m["hostPort"] for m in node["extraPortMappings"]} == {9180, 9543}
    upgrade = next(c for c in run.calls if c[:2] == ["helm", "upgrade"])
    assert upgrade[3:7] == ["demo", "helm/agora", "--namespace", "shop"]
    assert "ingress.publicUrl=http://localhost:9180/" in upgrade
    assert ["kubectl", "--context", "kind-lab", "apply", "-f", INGRESS_NGINX_MANIFEST] in run.calls
    # an image missing from the host's cache is pulled there once, then loaded
    pull = run.calls.index(["docker", "pull", "--quiet", "redis:7.4.5-bookworm"])
    loaded = ["kind", "load", "docker-image", "redis:7.4.5-bookworm", "--name", "lab"]
    assert run.calls[pull + 1] == loaded


def test_deploy_again_keeps_the_cluster_and_warns_about_another_node_version(cluster_sh) -> None:
    assert cluster_sh("deploy").returncode == 0
    again = cluster_sh("deploy", FAKE_NODE_VERSION="v1.35.0")
    assert again.returncode == 0, again.stderr
    assert not [c for c in again.calls if c[:3] == ["kind", "create", "cluster"]]
    assert ["kubectl", "--context", "kind-agora", "get", "nodes", "--output",
            "jsonpath={.items[0].status.nodeInfo.kubeletVersion}"] in again.calls  # fmt: skip
    assert "runs Kubernetes v1.35.0, not the pinned kindest/node:v1.33.7" in again.stderr


@pytest.mark.parametrize(
    ("missing", "version", "complaint"),
    [
        ("docker", None, "docker is not installed: install Docker"),
        ("kind", None, "kind is not installed: curl -Lo kind https://kind.sigs.k8s.io/dl/v0.31.0/"),
        (None, "v0.29.0", "kind v0.29.0 is too old: v0.31.0 or newer"),
        (None, "v0.24.0", "kind v0.24.0 is too old"),
    ],
)
def test_deploy_stops_before_anything_when_docker_or_kind_is_missing(
    cluster_sh, fakes: Path, missing, version, complaint
) -> None:
    if missing:
        without(fakes, missing)
    run = cluster_sh("deploy", **({"FAKE_KIND_VERSION": version} if version else {}))
    assert run.returncode != 0
    assert complaint in run.stderr
    assert not [c for c in run.calls if c[0] in ("helm", "kubectl") or c[1:2] == ["create"]]


def test_a_newer_kind_is_accepted(cluster_sh) -> None:
    assert cluster_sh("deploy", FAKE_KIND_VERSION="v0.33.0").returncode == 0


def test_the_deploy_arguments_render_with_an_all_digit_tag(cluster_sh) -> None:
    """About one image tag in 300 is all digits: `--set image.tag=123456789012` would make it
    a number, which the schema refuses. The deploy's own arguments, with such a tag."""
    run = cluster_sh("deploy")
    upgrade = next(c for c in run.calls if c[:2] == ["helm", "upgrade"])
    args = upgrade[3 : upgrade.index("--kube-context")]
    tag_at = args.index(f"image.tag={the_tag(run)}")
    args[tag_at] = "image.tag=123456789012"
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    assert "image: agora:123456789012" in result.stdout
    # and what the old `--set` did, for the record
    args[tag_at - 1] = "--set"
    refused = helm_template(*args)
    assert refused.returncode != 0 and "got number, want string" in refused.stderr


# ---------------------------------------------------------------- port-forwards


@pytest.mark.parametrize("command", ["port-forward", "test-cluster"])
def test_a_port_forward_that_cannot_listen_fails_loudly(cluster_sh, command) -> None:
    """Debian's prometheus package holds 9090: a forward that cannot bind must not leave a
    URL showing the laptop's own Prometheus."""
    cluster_sh("deploy")  # the cluster exists (test-cluster checks)
    run = cluster_sh(command, FAKE_TAKEN_PORTS="19090")
    assert run.returncode != 0
    assert "address already in use" in run.stderr
    assert "did not start (is the port taken?" in run.stderr
    assert "Prometheus on http" not in run.stdout + run.stderr
    forward = next(c for c in run.calls if "port-forward" in c)
    assert forward[-3:] == ["127.0.0.1", "service/agora-prometheus", "19090:9090"]


def test_port_forward_ports_are_settings(cluster_sh) -> None:
    run = cluster_sh("port-forward", "users", PROMETHEUS_PORT="29090", FAKE_TAKEN_PORTS="28000",
                     FORWARD_PORT="28000")  # fmt: skip
    forwards = [c[-2:] for c in run.calls if "port-forward" in c]
    assert forwards == [["service/agora-prometheus", "29090:9090"], ["service/users", "28000:8000"]]
    assert run.returncode != 0 and "127.0.0.1:28000 did not start" in run.stderr


def prometheus_selector(run: Run) -> str:
    (lookup,) = [c for c in run.calls if c[1:2] == ["--context"] and "-l" in c]
    return lookup[lookup.index("-l") + 1]


@pytest.mark.parametrize("release", ["agora", "shop", "agora-canary"])
def test_the_scripts_find_the_prometheus_service_by_its_labels(cluster_sh, release) -> None:
    """The chart names it <fullname>-prometheus, which RELEASE alone does not give: the
    scripts select it by labels, and exactly the chart's Prometheus Service has them."""
    run = cluster_sh("port-forward", RELEASE=release, FAKE_TAKEN_PORTS="19090")
    selector = dict(pair.split("=") for pair in prometheus_selector(run).split(","))
    services = [
        doc
        for doc in yaml.safe_load_all(render_text_as(release))
        if doc and doc["kind"] == "Service"
        and selector.items() <= doc["metadata"]["labels"].items()
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in services] == [
        f"{release}-prometheus" if "agora" in release else f"{release}-agora-prometheus"
    ]
    assert services[0]["spec"]["ports"][0]["port"] == 9090


def render_text_as(release: str) -> str:
    return helm_template(release, str(CHART), "--namespace", "agora").stdout

"""Canaries in the chart (tests/chart/values/canary*.yaml): the second track's objects,
its canary Ingress as values say, selectors that never reach the other track, the
analysis Job and its minimal RBAC, Prometheus' labels, fault injection refused unless
allowed, and devstack giving its canary replicas what the chart gives canary pods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import render as devstack_render
from devstack.layout import Layout
from devstack.postgres import Server
from services.kit.canary.analysis import Plan

from .conftest import Rendered, helm, render
from .test_devstack_agreement import (
    chart_addresses,
    devstack_addresses,
    discovered,
    normalise,
    relabel,
)
from .test_ingress import ingress_paths as paths

PREFIX = "nginx.ingress.kubernetes.io/"
CANARY_SETS = ["canary", "canary-hpa"]


@pytest.fixture(params=CANARY_SETS)
def with_canaries(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    return renders[request.param]


def canaries(rendered: Rendered) -> list[Any]:
    found = [w for w in rendered.workloads if w.canary]
    assert found, rendered.name
    return found


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def pod_labels(rendered: Rendered, deployment: str) -> dict[str, str]:
    return rendered.get("Deployment", deployment)["spec"]["template"]["metadata"]["labels"]


# ---------------------------------------------------------------- objects


def test_a_canary_has_its_own_deployment_service_and_env(with_canaries: Rendered) -> None:
    for workload in canaries(with_canaries):
        canary, spec = f"{workload.name}-canary", workload.canary
        deployment = with_canaries.get("Deployment", canary)
        stable = with_canaries.get("Deployment", workload.name)
        labels = pod_labels(with_canaries, canary)
        assert (
            labels["track"] == "canary"
            and pod_labels(with_canaries, workload.name)["track"] == "stable"
        )
        assert (
            deployment["spec"].get("replicas") == spec.replicas
            or workload.raw["autoscaling"]["enabled"]
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        tag = workload.raw["canary"]["image"]["tag"]
        if tag:
            assert container["image"].endswith(f":{tag}")
            assert labels["app.kubernetes.io/version"] == (workload.raw["canary"]["version"] or tag)
        elif workload.raw["canary"]["version"]:
            assert labels["app.kubernetes.io/version"] == workload.raw["canary"]["version"]
        assert (
            container["command"] == stable["spec"]["template"]["spec"]["containers"][0]["command"]
        )
        env, stable_env = with_canaries.env_of(deployment), with_canaries.env_of(stable)
        variant = {"AB_VARIANT": spec.ab.canary} if spec.ab else {}
        assert env == {**stable_env, **spec.env, **variant}  # the same database and role
        assert env["SERVICE_NAME"] == workload.name
        service = with_canaries.get("Service", canary)
        assert (
            service["spec"]["ports"] == with_canaries.get("Service", workload.name)["spec"]["ports"]
        )


def key_mounts(rendered: Rendered, deployment: str) -> dict[str, Any]:
    """What a Deployment's pods get of the token keys: volumes, mounts, the key files' env."""
    pod = rendered.get("Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", []) if v["name"].startswith("auth-")}
    mounts = {m["name"]: m for m in container.get("volumeMounts", []) if m["name"] in volumes}
    env = rendered.env_of(rendered.get("Deployment", deployment))
    return {
        "volumes": volumes,
        "mounts": mounts,
        "env": {key: value for key, value in env.items() if key.startswith("AUTH_")},
    }


def test_a_canary_gets_the_token_keys_its_service_has(with_canaries: Rendered) -> None:
    """A canary verifies (and, of users, signs) tokens as its stable version does: the
    same key volumes, mounted at the same paths, named by the same env."""
    by_auth: dict[str, int] = {}
    for workload in canaries(with_canaries):
        canary = key_mounts(with_canaries, f"{workload.name}-canary")
        assert canary == key_mounts(with_canaries, workload.name), workload.name
        expected = {"none": set(), "verify": {"auth-public"}}.get(
            workload.auth, {"auth-public", "auth-signing"}
        )
        assert set(canary["volumes"]) == set(canary["mounts"]) == expected, workload.name
        for key_file in canary["env"].values():  # each file the env names is mounted
            assert any(key_file.startswith(m["mountPath"] + "/") for m in canary["mounts"].values())
        for volume in canary["volumes"].values():  # and its Secret or ConfigMap is rendered
            source = volume.get("secret", {}).get("secretName")
            kind = "Secret" if source else "ConfigMap"
            assert with_canaries.get(kind, source or volume["configMap"]["name"])
        by_auth[workload.auth] = by_auth.get(workload.auth, 0) + 1
    if with_canaries.name == "canary":  # users signs, the others verify
        assert by_auth.get("sign") and by_auth.get("verify"), by_auth


def test_a_canary_of_a_service_without_tokens_mounts_no_keys() -> None:
    rendered = render(
        "canary-no-auth",
        [],
        *("--set", "services.calc.canary.enabled=true", "--set", "services.calc.auth=none"),
    )
    for deployment in ("calc", "calc-canary"):
        assert key_mounts(rendered, deployment) == {"volumes": {}, "mounts": {}, "env": {}}
    assert key_mounts(rendered, "catalog")["volumes"]  # the others still verify


def test_canary_ingress_follows_values(with_canaries: Rendered) -> None:
    ingresses = with_canaries.of_kind("Ingress")
    for workload in canaries(with_canaries):
        spec = workload.canary
        ingress = with_canaries.get("Ingress", f"agora-{workload.name}-canary")
        annotations = ingress["metadata"]["annotations"]
        assert annotations[PREFIX + "canary"] == "true"
        assert annotations[PREFIX + "canary-by-header"] == spec.header
        assert annotations.get(PREFIX + "canary-by-cookie", "") == spec.cookie
        analysed = spec.analysis["enabled"] and not spec.ab
        # an analysed canary starts at 0: its Job steps the weight
        assert annotations[PREFIX + "canary-weight"] == str(0 if analysed else spec.weight)
        prefixes = {p.rstrip("/") or "/" for p in workload.ingress + workload.websockets}
        assert set(paths(ingress)) == prefixes
        assert set(paths(ingress).values()) == {f"{workload.name}-canary"}
        # each of its paths is a main Ingress' path, to stable; no other Ingress uses its
        # Service, and no other canary Ingress has its paths (ingress-nginx's rules)
        main = {}
        for other in ingresses:
            if other is ingress:
                continue
            other_paths = paths(other)
            assert f"{workload.name}-canary" not in other_paths.values()
            if other["metadata"]["annotations"].get(PREFIX + "canary") == "true":
                assert not set(other_paths) & set(paths(ingress))
            else:
                main.update(other_paths)
        assert {p: main[p] for p in paths(ingress)} == dict.fromkeys(paths(ingress), workload.name)


def test_an_ab_test_is_sticky_by_the_ingress_cookie(renders: dict[str, Rendered]) -> None:
    rendered = renders["canary"]
    (workload,) = [w for w in canaries(rendered) if w.canary.ab]
    ab = workload.canary.ab
    own = rendered.get("Ingress", f"agora-{workload.name}")
    canary = rendered.get("Ingress", f"agora-{workload.name}-canary")
    for ingress in (own, canary):
        annotations = ingress["metadata"]["annotations"]
        assert annotations[PREFIX + "affinity"] == "cookie"
        assert annotations[PREFIX + "affinity-canary-behavior"] == "sticky"
        assert annotations[PREFIX + "session-cookie-name"] == ab.cookie
        assert annotations[PREFIX + "session-cookie-path"] == "/"
    assert set(paths(own)) == {p.rstrip("/") for p in workload.ingress}
    main = rendered.get("Ingress", "agora")
    assert not set(paths(main)) & set(paths(own))  # nobody else's users pinned to a pod
    assert PREFIX + "affinity" not in main["metadata"]["annotations"]
    assert pod_labels(rendered, workload.name)["variant"] == ab.stable
    assert pod_labels(rendered, f"{workload.name}-canary")["variant"] == ab.canary
    # the service knows its variant (AB_VARIANT), as devstack's replicas do
    assert rendered.env_of(rendered.get("Deployment", workload.name))["AB_VARIANT"] == ab.stable
    canary_env = rendered.env_of(rendered.get("Deployment", f"{workload.name}-canary"))
    assert canary_env["AB_VARIANT"] == ab.canary
    tracks = (workload.name, f"{workload.name}-canary")
    others = [d for d in rendered.of_kind("Deployment") if d["metadata"]["name"] not in tracks]
    assert others and all("AB_VARIANT" not in rendered.env_of(d) for d in others)
    assert rendered.find("Job", f"agora-{workload.name}-canary-analysis") is None


def selectors(rendered: Rendered, name: str) -> dict[str, dict[str, str]]:
    """Every selector that picks a workload's pods, by what holds it."""
    found = {
        "Deployment": rendered.get("Deployment", name)["spec"]["selector"]["matchLabels"],
        "Service": rendered.get("Service", name)["spec"]["selector"],
    }
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        obj = rendered.find(kind, name)
        if obj:
            spec = obj["spec"]
            found[kind] = (spec.get("selector") or spec["podSelector"])["matchLabels"]
    spread = rendered.get("Deployment", name)["spec"]["template"]["spec"]
    found["topologySpread"] = spread["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
    return found


def test_selectors_never_overlap_between_tracks(with_canaries: Rendered) -> None:
    for workload in canaries(with_canaries):
        stable, canary = workload.name, f"{workload.name}-canary"
        tracks = {
            stable: pod_labels(with_canaries, stable),
            canary: pod_labels(with_canaries, canary),
        }
        for owner, other in ((stable, canary), (canary, stable)):
            for kind, selector in selectors(with_canaries, owner).items():
                assert matches(selector, tracks[owner]), (owner, kind)
                assert not matches(selector, tracks[other]), (owner, kind, "selects", other)
                assert "track" not in selector  # a stable Deployment's selector never changed
        hpa = with_canaries.find("HorizontalPodAutoscaler", canary)
        if workload.raw["autoscaling"]["enabled"]:
            assert hpa["spec"]["scaleTargetRef"]["name"] == canary
            assert hpa["spec"]["minReplicas"] == workload.canary.replicas
        if workload.canary.replicas > 1 or workload.raw["autoscaling"]["enabled"]:
            with_canaries.get("PodDisruptionBudget", canary)
        # other services' egress to it reaches stable only: the canary takes ingress traffic
        for policy in with_canaries.of_kind("NetworkPolicy"):
            for rule in policy["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    labels = peer.get("podSelector", {}).get("matchLabels")
                    if labels and policy["metadata"]["name"] not in (
                        "agora-prometheus",
                        "agora-tests",
                    ):
                        assert not matches(labels, tracks[canary]), policy["metadata"]["name"]


def test_the_canary_reaches_what_stable_reaches(renders: dict[str, Rendered]) -> None:
    rendered = renders["canary"]
    for workload in canaries(rendered):
        canary = f"{workload.name}-canary"
        stable_policy = rendered.get("NetworkPolicy", workload.name)["spec"]
        canary_policy = rendered.get("NetworkPolicy", canary)["spec"]
        assert canary_policy["egress"] == stable_policy["egress"]
        labels = pod_labels(rendered, canary)
        for backend, used in (
            ("agora-postgresql", workload.postgres),
            ("agora-redis", workload.redis),
        ):
            rule = rendered.get("NetworkPolicy", backend)["spec"]["ingress"][0]
            names = rule["from"][0]["podSelector"]["matchExpressions"][1]["values"]
            assert (labels["app.kubernetes.io/name"] in names) == used, backend
        prometheus = rendered.get("NetworkPolicy", "agora-prometheus")["spec"]["egress"]
        assert any(
            matches(peer["podSelector"]["matchLabels"], labels)
            for rule in prometheus
            for peer in rule["to"]
            if "podSelector" in peer
        )


# ---------------------------------------------------------------- the analysis


def test_analysis_job_runs_after_an_upgrade_with_the_values_plan(with_canaries: Rendered) -> None:
    analysed = [
        w for w in canaries(with_canaries) if w.canary.analysis["enabled"] and not w.canary.ab
    ]
    jobs = {
        j["metadata"]["name"]: j
        for j in with_canaries.of_kind("Job")
        if "canary" in j["metadata"]["name"]
    }
    assert set(jobs) == {f"agora-{w.name}-canary-analysis" for w in analysed}
    for workload in analysed:
        job = jobs[f"agora-{workload.name}-canary-analysis"]
        hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
        assert hooks == {"post-install", "post-upgrade"}
        assert job["spec"]["backoffLimit"] == 0
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["agora-canary"]
        env = {e["name"]: e["value"] for e in container["env"]}
        plan = Plan.from_values(workload.name, json.loads(env["CANARY_ANALYSIS"]))
        assert plan == Plan.from_values(workload.name, workload.canary.analysis)
        longest = len(plan.steps) * (plan.step_seconds + plan.max_waits * plan.interval_seconds)
        assert job["spec"]["activeDeadlineSeconds"] > longest
        assert env["CANARY_INGRESS"] == f"agora-{workload.name}-canary"
        assert (env["STABLE_DEPLOYMENT"], env["CANARY_DEPLOYMENT"]) == (
            workload.name,
            f"{workload.name}-canary",
        )
        if with_canaries.values["prometheus"]["enabled"]:
            assert env["PROMETHEUS_URL"] == "http://agora-prometheus:9090"
        else:
            assert env["PROMETHEUS_URL"] == with_canaries.values["canaryAnalysis"]["prometheusUrl"]


def test_analysis_rbac_is_minimal(with_canaries: Rendered) -> None:
    names = {o["metadata"]["name"] for o in with_canaries.objects}
    for job in with_canaries.of_kind("Job"):
        account = job["spec"]["template"]["spec"].get("serviceAccountName")
        if not account or "canary-analysis" not in account:
            continue
        service = job["metadata"]["name"].removeprefix("agora-").removesuffix("-canary-analysis")
        (binding,) = [
            b
            for b in with_canaries.of_kind("RoleBinding")
            if any(s["name"] == account for s in b["subjects"])
        ]
        assert binding["roleRef"]["kind"] == "Role"
        assert not [
            b
            for b in with_canaries.of_kind("ClusterRoleBinding")
            if any(s["name"] == account for s in b["subjects"])
        ]
        role = with_canaries.get("Role", binding["roleRef"]["name"])
        rules = sorted(role["rules"], key=lambda r: r["apiGroups"])
        assert rules == [
            {"apiGroups": ["apps"], "resources": ["deployments"],
             "resourceNames": [service, f"{service}-canary"], "verbs": ["get", "patch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
             "resourceNames": [f"agora-{service}-canary"], "verbs": ["get", "patch"]},
        ]  # fmt: skip
        assert all(name in names for rule in rules for name in rule["resourceNames"])
        if with_canaries.values["networkPolicy"]["enabled"]:
            policy = with_canaries.get("NetworkPolicy", job["metadata"]["name"])["spec"]
            assert policy["ingress"] == []
            assert matches(
                policy["podSelector"]["matchLabels"], job["spec"]["template"]["metadata"]["labels"]
            )


def test_prometheus_admits_the_analysis_only_when_there_is_one(
    renders: dict[str, Rendered],
) -> None:
    assert renders["default"].get("NetworkPolicy", "agora-prometheus")["spec"]["ingress"] == []
    (rule,) = renders["canary"].get("NetworkPolicy", "agora-prometheus")["spec"]["ingress"]
    job = renders["canary"].get("Job", "agora-catalog-canary-analysis")
    assert matches(
        rule["from"][0]["podSelector"]["matchLabels"], job["spec"]["template"]["metadata"]["labels"]
    )
    assert rule["ports"] == [{"port": 9090, "protocol": "TCP"}]


# ---------------------------------------------------------------- Prometheus and devstack


def test_prometheus_labels_canary_pods_like_devstack(
    tmp_path: Path, renders: dict[str, Rendered]
) -> None:
    rendered = renders["canary"]
    config = yaml.safe_load(rendered.get("ConfigMap", "agora-prometheus")["data"]["prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "agora"]
    layout = Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)
    local = yaml.safe_load(devstack_render.prometheus_yml(layout, rendered.workloads))
    (local_job,) = [j for j in local["scrape_configs"] if j["job_name"] == "agora"]
    expected = {
        (t["labels"]["app"], t["labels"]["track"], t["labels"].get("variant", ""))
        for t in local_job["static_configs"]
    }
    seen = set()
    for index, (owner, pod) in enumerate(rendered.pod_templates()):
        container = pod["spec"]["containers"][0]
        for port in container.get("ports", []):
            labels = discovered(
                pod, owner["metadata"]["name"], f"10.0.0.{index + 1}", port["containerPort"]
            )
            target = relabel(labels, job["relabel_configs"])
            if target is not None and owner["kind"] == "Deployment":
                seen.add((target["app"], target["track"], target.get("variant", "")))
    assert seen == expected
    assert ("catalog", "canary", "") in seen and ("users", "canary", "b") in seen


def test_devstack_canary_replicas_get_the_canary_pods_env(
    tmp_path: Path, renders: dict[str, Rendered]
) -> None:
    rendered = renders["canary"]
    layout = Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)
    server = Server(layout.postgres_port, layout.socket_dir)
    dsns = {w.name: server.dsn(w.name, "devstack-password") for w in rendered.workloads}
    urls = layout.service_urls(rendered.workloads)
    checked = 0
    for replica in layout.replicas(rendered.workloads):
        if replica.track != "canary":
            continue
        local = devstack_render.replica_env(layout, replica, urls, dsns)
        cluster = rendered.env_of(rendered.get("Deployment", f"{replica.workload.name}-canary"))
        assert normalise(cluster, chart_addresses(rendered)) == normalise(
            local, devstack_addresses(layout, rendered)
        ), replica.name
        checked += 1
    assert checked == sum(w.canary.replicas for w in canaries(rendered))


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "setting",
    [
        "services.calc.env.FAULT_ERROR_RATE=0.1",
        "services.calc.env.FAULT_LATENCY_MS=200",
        "services.calc.canary.env.FAULT_ERROR_RATE=0.2",
    ],
)
def test_fault_injection_is_refused_unless_allowed(setting: str) -> None:
    extra = ["--set", "services.calc.canary.enabled=true"] if ".canary." in setting else []
    refused = helm("template", "agora", "helm/agora", *extra, "--set-string", setting, check=False)
    assert refused.returncode != 0
    assert "faultInjection.allowed" in refused.stderr
    allowed = render(
        "faults", [], *extra, "--set-string", setting, "--set", "faultInjection.allowed=true"
    )
    assert allowed.get("ConfigMap", "calc-canary-env" if extra else "calc-env")


def test_zero_faults_are_not_faults() -> None:
    render("no-faults", [], "--set-string", "services.calc.env.FAULT_ERROR_RATE=0")


@pytest.mark.parametrize(
    "settings",
    [
        ["services.factsource.canary.enabled=true"],  # a service without ingress paths
        ["services.calc.canary.enabled=true", "ingress.enabled=false"],
    ],
)
def test_a_canary_without_ingress_paths_is_refused(settings: list[str]) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]
    refused = helm("template", "agora", "helm/agora", *args, check=False)
    assert refused.returncode != 0 and "no ingress paths" in refused.stderr

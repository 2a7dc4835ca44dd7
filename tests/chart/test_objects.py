"""What the rendered objects promise, checked on every value set."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.topology import databases, url_variable

from .conftest import NAMESPACE, Rendered, render

SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def services_of(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "service"
    }


def workload_names(rendered: Rendered) -> list[str]:
    """Every service's Deployment and Service: its own, and its canary's when it has one."""
    names = [w.name for w in rendered.workloads]
    return sorted(names + [f"{w.name}-canary" for w in rendered.workloads if w.canary])


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod["spec"].get("initContainers", []) + pod["spec"]["containers"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


# ---------------------------------------------------------------- every service


def test_every_enabled_service_is_rendered_once(rendered: Rendered) -> None:
    names = workload_names(rendered)
    assert sorted(services_of(rendered)) == names
    for name in names:
        rendered.get("Service", name)
        rendered.get("ConfigMap", f"{name}-env")


def test_probes_are_distinct_and_liveness_never_checks_dependencies(rendered: Rendered) -> None:
    for workload in rendered.workloads:
        container = services_of(rendered)[workload.name]["spec"]["template"]["spec"]
        container = container["containers"][0]
        probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "readiness", "liveness")}
        paths = {kind: probe["httpGet"]["path"] for kind, probe in probes.items()}
        assert paths == workload.probes
        assert paths["liveness"] != paths["readiness"]  # /readyz reports dependencies
        assert paths["liveness"] == "/healthz"
        timings = {kind: (p["periodSeconds"], p["failureThreshold"]) for kind, p in probes.items()}
        assert len(set(timings.values())) == 3, timings
        # startup allows a slow first start without making liveness lenient
        startup = probes["startup"]["periodSeconds"] * probes["startup"]["failureThreshold"]
        liveness = probes["liveness"]["periodSeconds"] * probes["liveness"]["failureThreshold"]
        assert startup > liveness


def test_grace_period_covers_the_pre_stop_sleep_and_the_graceful_shutdown(
    rendered: Rendered,
) -> None:
    for name, deployment in services_of(rendered).items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        shutdown = math.ceil(float(rendered.env_of(deployment)["SHUTDOWN_GRACE"]))
        assert pre_stop >= 1
        assert pod["terminationGracePeriodSeconds"] > pre_stop + shutdown, name


def test_grace_period_follows_shutdown_grace() -> None:
    longer = render("grace", [], "--set", "default.env.SHUTDOWN_GRACE=42.5")
    pod = longer.get("Deployment", "users")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 5 + 43


def test_pods_are_hardened(rendered: Rendered) -> None:
    for owner, pod in rendered.pod_templates():
        spec = pod["spec"]
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        api_client = owner["metadata"]["labels"]["app.kubernetes.io/component"] in (
            "monitoring",  # Prometheus' discovery
            "canary-analysis",  # the Job that sets a canary's weight
        )
        if not api_client:
            assert spec["automountServiceAccountToken"] is False, where
        for container in containers(pod):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert "privileged" not in security, where
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_service_pods_run_as_the_image_user_with_scratch_dirs_only(rendered: Rendered) -> None:
    """Writable: emptyDirs only. Besides them, read-only: the token keys (test_auth.py) and
    socialcompat's impersonation credential (test_socialcompat.py)."""
    for deployment in services_of(rendered).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] >= 10000
        container = pod["containers"][0]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {
            m["mountPath"]: volumes[m["name"]]
            for m in container["volumeMounts"]
            if not m.get("readOnly")
        }
        metrics_dir = rendered.env_of(deployment)["PROMETHEUS_MULTIPROC_DIR"]
        assert set(mounts) == {"/tmp", metrics_dir}
        assert all("emptyDir" in volume for volume in mounts.values())
        read_only = {m["name"] for m in container["volumeMounts"] if m.get("readOnly")}
        assert read_only <= {"auth-public", "auth-signing", "impersonation"}


def test_pods_spread_across_nodes(rendered: Rendered) -> None:
    for deployment in services_of(rendered).values():
        pod = deployment["spec"]["template"]
        (spread,) = pod["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # never blocks scheduling
        assert matches(spread["labelSelector"]["matchLabels"], pod["metadata"]["labels"])


def test_env_changes_roll_the_pods(default_render: Rendered) -> None:
    changed = render("debug", [], "--set", "services.users.env.LOG_LEVEL=DEBUG")

    def checksum(rendered: Rendered, name: str) -> str:
        pod = rendered.get("Deployment", name)["spec"]["template"]["metadata"]
        return pod["annotations"]["checksum/env"]

    assert checksum(changed, "users") != checksum(default_render, "users")
    assert checksum(changed, "catalog") == checksum(default_render, "catalog")
    assert changed.env_of(changed.get("Deployment", "users"))["LOG_LEVEL"] == "DEBUG"


# ---------------------------------------------------------------- labels and selectors


def test_selectors_are_the_stable_labels_and_match_their_pods(rendered: Rendered) -> None:
    for obj in rendered.objects:
        if obj["kind"] in WORKLOAD_KINDS:
            selector = obj["spec"]["selector"]["matchLabels"]
            assert set(selector) == SELECTOR_KEYS, obj["metadata"]["name"]
            assert matches(selector, obj["spec"]["template"]["metadata"]["labels"])
        labels = obj["metadata"]["labels"]
        for key in ("name", "instance", "component", "part-of", "version", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, (obj["kind"], obj["metadata"]["name"])


def test_each_service_selects_exactly_its_own_pods(rendered: Rendered) -> None:
    pods = [(owner, pod["metadata"]["labels"]) for owner, pod in rendered.pod_templates()]
    for service in rendered.of_kind("Service"):
        selected = [o for o, labels in pods if matches(service["spec"]["selector"], labels)]
        assert len(selected) == 1, service["metadata"]["name"]
        (owner,) = selected
        pod = owner["spec"]["template"]["spec"]
        declared = {(p["name"], p["containerPort"]) for c in pod["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in {name for name, _ in declared}


CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}


def test_objects_carry_the_release_namespace(rendered: Rendered) -> None:
    """All but what Prometheus is granted where it scrapes (the ingress controller's and
    kube-state-metrics' namespaces) and the dashboard, wherever Grafana's sidecar looks."""
    scrape = rendered.values["prometheus"]["scrape"]
    dashboards = rendered.values["grafana"]["dashboards"]["namespace"] or NAMESPACE
    for obj in rendered.objects:
        namespace = obj["metadata"].get("namespace")
        name = (obj["kind"], obj["metadata"]["name"])
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, name
        elif name == ("ConfigMap", "agora-dashboard"):
            assert namespace == dashboards
        elif namespace != NAMESPACE:
            assert obj["kind"] in ("Role", "RoleBinding"), name
            assert namespace in {s.get("namespace") for s in scrape.values() if s["enabled"]}


# ---------------------------------------------------------------- addresses


def service_ports(rendered: Rendered) -> dict[str, set[int]]:
    return {
        s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]}
        for s in rendered.of_kind("Service")
    }


def test_every_ingress_backend_is_a_rendered_service_port(rendered: Rendered) -> None:
    ports = service_ports(rendered)
    ingresses = rendered.of_kind("Ingress")
    canaries = {f"agora-{w.name}-canary" for w in rendered.workloads if w.canary}
    ab_tests = {f"agora-{w.name}" for w in rendered.workloads if w.canary and w.canary.ab}
    names = {i["metadata"]["name"] for i in ingresses}
    assert names - {"agora-own-errors"} == {"agora", "agora-websockets"} | canaries | ab_tests
    assert "agora-own-errors" in names or ab_tests  # an A/B test may take all its paths
    for ingress in ingresses:
        canary = ingress["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/canary")
        # a canary Ingress takes its settings, the default backend too, from the main one
        assert ("defaultBackend" in ingress["spec"]) != (canary == "true")
        backends = [ingress["spec"]["defaultBackend"]["service"]] if not canary else []
        backends += [
            path["backend"]["service"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        ]
        for backend in backends:
            assert backend["port"]["number"] in ports[backend["name"]], backend


def test_websocket_paths_have_their_own_ingress_with_long_timeouts(rendered: Rendered) -> None:
    """ingress-nginx reads proxy timeouts per Ingress: the WebSocket paths (and only
    they) sit on one whose timeouts outlast quiet sockets; it keeps the other settings."""
    main = rendered.get("Ingress", "agora")
    sockets = rendered.get("Ingress", "agora-websockets")

    def paths(ingress: dict) -> dict[str, str]:
        return {
            p["path"]: p["backend"]["service"]["name"]
            for rule in ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
        }

    expected = {p: w.name for w in rendered.workloads for p in w.websockets}
    assert expected and paths(sockets) == expected
    assert not set(paths(main)) & set(expected)
    annotations = sockets["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    heartbeat = max(float(w.env.get("WS_HEARTBEAT", 20)) for w in rendered.workloads)
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(annotations[prefix + timeout]) > 2 * heartbeat
        assert prefix + timeout not in main["metadata"].get("annotations", {})
    for key, value in main["metadata"].get("annotations", {}).items():
        if key != prefix + "custom-http-errors":  # the services' own answers pass (test_ingress)
            assert annotations[key] == value  # body size and the rest apply to both
    assert sockets["spec"]["ingressClassName"] == main["spec"]["ingressClassName"]


def test_every_cluster_url_in_the_env_names_a_rendered_service_port(rendered: Rendered) -> None:
    """*_URL and DATABASE_URL addresses without a dot are Services of this release."""
    ports = service_ports(rendered)
    checked = 0
    for deployment in services_of(rendered).values():
        for name, value in rendered.env_of(deployment).items():
            if not name.endswith("_URL"):
                continue
            address = urlsplit(value.replace("$(REDIS_PASSWORD)", "secret"))
            if "." in (address.hostname or ""):
                continue  # an external system
            assert address.port in ports[address.hostname], f"{name}={value}"
            checked += 1
    bundled = {key: rendered.values[key]["enabled"] for key in ("postgresql", "redis")}
    expected = sum(
        (len(w.upstreams) + (w.postgres and bundled["postgresql"]) + (w.redis and bundled["redis"]))
        * (2 if w.canary else 1)  # a canary has the same
        for w in rendered.workloads
    )
    assert checked == expected


def test_upstreams_become_url_variables(rendered: Rendered) -> None:
    for workload in rendered.workloads:
        env = rendered.env_of(rendered.get("Deployment", workload.name))
        urls = {k: v for k, v in env.items() if k.endswith("_URL") and k != "DATABASE_URL"}
        urls.pop("REDIS_URL", None)
        ports = service_ports(rendered)
        declared = {k for k, v in urls.items() if urlsplit(v).hostname in ports}
        expected = {url_variable(up) for up in workload.upstreams}
        assert declared == expected


def test_database_and_redis_credentials_come_from_secrets(rendered: Rendered) -> None:
    secrets = {s["metadata"]["name"]: s for s in rendered.of_kind("Secret")}
    for workload in rendered.workloads:
        env = rendered.env_of(rendered.get("Deployment", workload.name))
        assert ("DATABASE_URL" in env) == workload.postgres
        assert ("REDIS_URL" in env) == workload.redis
        if workload.postgres:
            assert urlsplit(env["DATABASE_URL"]).password is None
            assert urlsplit(env["DATABASE_URL"]).path == f"/{workload.database}"
            assert urlsplit(env["DATABASE_URL"]).username == workload.database
            secret, key = env["PGPASSWORD"].removeprefix("secret:").split("/")
            assert key == f"{workload.database}-password"
            if rendered.values["postgresql"]["enabled"]:
                assert key in secrets[secret]["data"]
            else:
                assert secret == rendered.values["externalDatabase"]["existingSecret"]
        if workload.redis:
            assert "$(REDIS_PASSWORD)" in env["REDIS_URL"]
            assert env["REDIS_PASSWORD"].startswith("secret:")


def test_a_service_shares_another_services_database_as_data(default_render: Rendered) -> None:
    """crawler-worker uses the crawler's database (values.yaml `database: crawler`): the
    same DSN and password, no database, role or migration of its own."""
    env = {
        name: default_render.env_of(default_render.get("Deployment", name))
        for name in ("crawler", "crawler-worker")
    }
    assert env["crawler-worker"]["DATABASE_URL"] == env["crawler"]["DATABASE_URL"]
    assert env["crawler-worker"]["PGPASSWORD"] == env["crawler"]["PGPASSWORD"]
    job = default_render.get("Job", "agora-migrate")
    containers = [c["name"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert "crawler" in containers and "crawler-worker" not in containers
    secret = default_render.get("Secret", "agora-postgresql")["data"]
    assert "crawler-password" in secret and "crawler-worker-password" not in secret
    # and both may reach PostgreSQL
    policy = default_render.get("NetworkPolicy", "agora-postgresql")
    clients = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][1]
    assert {"crawler", "crawler-worker"} <= set(clients["values"])


def test_generated_passwords_are_random_and_never_in_values(
    default_render: Rendered,
) -> None:
    again = render("again", [])
    first = default_render.get("Secret", "agora-postgresql")["data"]
    second = again.get("Secret", "agora-postgresql")["data"]
    with_database = {f"{name}-password" for name in databases(default_render.workloads)}
    assert set(first) == {"postgres-password", *with_database}
    assert {"catalog-password", "orders-password"} <= with_database
    assert all(len(value) >= 32 for value in first.values())
    assert all(first[key] != second[key] for key in first)  # no lookup: freshly generated
    # values name where a password is kept (a Secret's key), never a password itself
    assert [key for key in keys_of(default_render.values) if "password" in key.lower()] == [
        "existingSecretPasswordKey"
    ]


def keys_of(tree: object) -> list[str]:
    if isinstance(tree, dict):
        return [k for key, value in tree.items() for k in (key, *keys_of(value))]
    if isinstance(tree, list):
        return [k for item in tree for k in keys_of(item)]
    return []


# ---------------------------------------------------------------- scaling


def test_hpa_and_replicas_are_never_both_set(rendered: Rendered) -> None:
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in hpas}
    for name, deployment in services_of(rendered).items():
        assert (name in scaled) != ("replicas" in deployment["spec"]), name
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_hpa_on_scales_every_service(renders: dict[str, Rendered]) -> None:
    hpa = renders["hpa"]
    assert len(hpa.of_kind("HorizontalPodAutoscaler")) == len(hpa.workloads)


def test_disruption_budgets_never_block_a_drain(rendered: Rendered) -> None:
    deployments = services_of(rendered)
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        spec = pdb["spec"]
        assert "minAvailable" not in spec
        assert spec["maxUnavailable"] >= 1
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        targets = [
            d
            for d in deployments.values()
            if matches(spec["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(targets) == 1
    for name, deployment in deployments.items():
        has_pdb = rendered.find("PodDisruptionBudget", name) is not None
        assert has_pdb == (deployment["spec"].get("replicas", 2) > 1), name


# ---------------------------------------------------------------- data and hooks


def test_postgres_and_redis_are_stateful_and_switchable(rendered: Rendered) -> None:
    uses = {key: any(getattr(w, key) for w in rendered.workloads) for key in ("postgres", "redis")}
    for key, component in (("postgres", "postgresql"), ("redis", "redis")):
        bundled = rendered.values[component]["enabled"] and uses[key]
        statefulset = rendered.find("StatefulSet", f"agora-{component}")
        assert (statefulset is not None) == bundled
        if statefulset:
            (claim,) = statefulset["spec"]["volumeClaimTemplates"]
            assert claim["spec"]["resources"]["requests"]["storage"]
            container = statefulset["spec"]["template"]["spec"]["containers"][0]
            assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)


def test_migrations_run_as_a_hook_for_every_database(rendered: Rendered) -> None:
    job = rendered.get("Job", "agora-migrate")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    bundled = rendered.values["postgresql"]["enabled"]
    assert hooks == {"post-install" if bundled else "pre-install", "pre-upgrade"}
    seed = ["--seed"] if rendered.values["migrations"]["seed"] else []
    commands = {c["name"]: c["command"] for c in job["spec"]["template"]["spec"]["containers"]}
    expected = {name: ["agora-migrate", name, *seed] for name in databases(rendered.workloads)}
    assert commands == expected
    if bundled:  # what the Job uses exists before it, with any new service's password
        for kind in ("Secret", "ConfigMap"):
            name = "agora-postgresql" + ("-init" if kind == "ConfigMap" else "")
            annotations = rendered.get(kind, name)["metadata"]["annotations"]
            assert "pre-upgrade" in annotations["helm.sh/hook"]
            assert int(annotations["helm.sh/hook-weight"]) < int(
                job["metadata"]["annotations"]["helm.sh/hook-weight"]
            )


def test_helm_test_calls_every_readiness_probe_through_its_service(rendered: Rendered) -> None:
    pod = rendered.get("Pod", "agora-test-readyz")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    python, flag, script, *urls = pod["spec"]["containers"][0]["command"]
    assert (python, flag) == ("python", "-c")
    compile(script, "readyz", "exec")
    ports = service_ports(rendered)
    expected = {f"http://{w.name}:{w.port}{w.probes['readiness']}" for w in rendered.workloads}
    expected |= {
        f"http://{w.name}-canary:{w.port}{w.probes['readiness']}"
        for w in rendered.workloads
        if w.canary
    }
    assert set(urls) == expected
    assert all(urlsplit(u).port in ports[urlsplit(u).hostname] for u in urls)


@pytest.mark.parametrize("value_set", ["default", "no-prometheus"])
def test_prometheus_discovers_annotated_pods(renders: dict[str, Rendered], value_set: str) -> None:
    rendered = renders[value_set]
    config = rendered.find("ConfigMap", "agora-prometheus")
    assert (config is not None) == rendered.values["prometheus"]["enabled"]
    for workload in rendered.workloads:
        pod = rendered.get("Deployment", workload.name)["spec"]["template"]["metadata"]
        assert pod["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["annotations"]["prometheus.io/port"] == str(workload.port)
        assert pod["annotations"]["prometheus.io/path"] == "/metrics"
        assert pod["labels"]["app.kubernetes.io/name"] == workload.name

"""devstack's canaries, rendered: the state overlay over values.yaml, the canary's
replicas and ports, its supervisord programs and Prometheus labels, and an nginx
configuration that nginx itself accepts (`nginx -t`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack import canary, render
from devstack.layout import MAX_REPLICAS, Layout
from devstack.topology import workloads


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)


def with_canaries(layout: Layout, **canaries: dict) -> list:
    state = canary.state(layout)
    state["canaries"].update(canaries)
    canary.save(layout, state)
    return workloads(canary.values(layout))


def test_no_state_is_values_yaml(layout):
    assert workloads(canary.values(layout)) == workloads()
    assert all(w.canary is None for w in workloads())


def test_a_canary_gets_replicas_on_the_last_ports_of_its_block(layout):
    services = with_canaries(layout, calc={"enabled": True, "env": {"FAULT_ERROR_RATE": "0.2"}})
    calc = next(w for w in services if w.name == "calc")
    replicas = [r for r in layout.replicas(services) if r.workload.name == "calc"]
    stable = [r for r in replicas if r.track == "stable"]
    (canary_replica,) = [r for r in replicas if r.track == "canary"]
    assert canary_replica.name == "calc-canary-0"
    assert canary_replica.port == layout.service_port(services.index(calc)) + MAX_REPLICAS
    assert canary_replica.port not in {r.port for r in stable}
    assert canary_replica.workload.env["FAULT_ERROR_RATE"] == "0.2"
    assert all("FAULT_ERROR_RATE" not in r.workload.env for r in stable)


def test_too_many_replicas_with_the_canary_are_refused(layout):
    services = with_canaries(layout, calc={"enabled": True, "replicas": MAX_REPLICAS})
    with pytest.raises(ValueError, match="canary"):
        layout.replicas(services)


def test_promoted_settings_become_stables_and_a_rollback_disables(layout):
    state = canary.state(layout)
    state["promoted"]["calc"] = {"env": {"ACCESS_LOG_SAMPLE": "0.5"}, "version": "v2"}
    state["canaries"]["calc"] = {"enabled": False}
    canary.save(layout, state)
    calc = next(w for w in workloads(canary.values(layout)) if w.name == "calc")
    assert calc.env["ACCESS_LOG_SAMPLE"] == "0.5" and calc.canary is None


def test_canary_replicas_are_programs_and_prometheus_targets(layout, tmp_path):
    services = with_canaries(
        layout, calc={"enabled": True}, catalog={"enabled": True, "ab": {"enabled": True}}
    )
    dsns = {w.name: "postgresql://x" for w in services if w.postgres}
    conf = render.supervisord_conf(layout, services, dsns, tmp_path)
    assert "[program:calc-canary-0]" in conf and "[group:" not in conf
    targets = yaml.safe_load(render.prometheus_yml(layout, services))["scrape_configs"][0]
    labels = {t["labels"]["pod"]: t["labels"] for t in targets["static_configs"]}
    assert labels["calc-canary-0"] == {"app": "calc", "pod": "calc-canary-0", "track": "canary"}
    assert labels["catalog-canary-0"]["variant"] == "b"
    assert labels["catalog-0"]["variant"] == "a" and labels["catalog-0"]["track"] == "stable"
    assert "variant" not in labels["calc-0"]


@pytest.mark.skipif(not shutil.which("nginx", path="/usr/sbin:/usr/bin"), reason="no nginx")
def test_nginx_accepts_the_split(layout):
    services = with_canaries(
        layout,
        calc={"enabled": True, "weight": 20, "cookie": "beta"},
        catalog={"enabled": True, "weight": 50, "ab": {"enabled": True}},
        realtime={"enabled": True, "weight": 100},
    )
    text = render.nginx_conf(layout, services)
    assert 'split_clients "$request_id" $canary_calc_weight { 20% canary; * stable; }' in text
    assert 'split_clients "catalog:$ab_key_agora_ab" $canary_catalog_weight' in text
    assert "$canary_realtime_weight { * canary; }" in text
    assert "map $cookie_beta $canary_calc_cookie" in text
    nginx_dir = layout.run_dir / "nginx"
    (nginx_dir / "tmp").mkdir(parents=True)
    (nginx_dir / "nginx.conf").write_text(text)
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    result = subprocess.run(
        [nginx, "-t", "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"),
         "-e", str(layout.run_dir / "error.log")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_canary_replicas_get_the_token_keys_of_their_service(layout):
    """users signs tokens and calc verifies them: their canaries too, with the same files."""
    services = with_canaries(layout, calc={"enabled": True}, users={"enabled": True})
    urls = layout.service_urls(services)
    dsns = {w.name: "postgresql://x" for w in services if w.postgres}
    replicas = layout.replicas(services)

    def keys(name: str) -> dict[str, str]:
        (replica,) = [r for r in replicas if r.name == name]
        env = render.replica_env(layout, replica, urls, dsns)
        return {key: value for key, value in env.items() if key.startswith("AUTH_")}

    assert keys("users-canary-0") == keys("users-0")
    assert set(keys("users-canary-0")) == {"AUTH_PUBLIC_KEY_FILE", "AUTH_PRIVATE_KEY_FILE"}
    assert keys("calc-canary-0") == keys("calc-0") and set(keys("calc-0")) == {
        "AUTH_PUBLIC_KEY_FILE"
    }


def test_the_ab_variant_reaches_the_service_and_the_answer(layout):
    """An A/B test's ingress sets the key cookie once, sends the variant to the service as
    X-Variant, and says on the answer which track and variant served it; a service
    without a canary is routed as before."""
    services = with_canaries(layout, catalog={"enabled": True, "ab": {"enabled": True}})
    text = render.nginx_conf(layout, services)
    assert (
        'map $cookie_agora_ab $ab_key_agora_ab { "" $request_id; default $cookie_agora_ab; }'
        in (text)
    )
    assert '"agora_ab=$request_id; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"' in text
    assert "map $canary_catalog_track $canary_catalog_variant { canary b; default a; }" in text
    assert "proxy_set_header X-Variant $agora_variant;" in text
    assert "add_header X-Variant $agora_variant always;" in text
    catalog_routes = [line for line in text.splitlines() if "/api/v1/products" in line]
    assert catalog_routes and all(
        "proxy_pass http://$canary_catalog_upstream;" in line
        and "set $agora_variant $canary_catalog_variant;" in line
        for line in catalog_routes
    )
    calc_routes = [line for line in text.splitlines() if "location = /api/v1/calc" in line]
    assert calc_routes and all("proxy_pass http://svc_calc;" in line for line in calc_routes)


def test_each_ab_track_knows_its_variant(layout):
    services = with_canaries(layout, catalog={"enabled": True, "ab": {"enabled": True}})
    urls = layout.service_urls(services)
    dsns = {w.name: "postgresql://x" for w in services if w.postgres}
    variants = {
        r.name: render.replica_env(layout, r, urls, dsns).get("AB_VARIANT")
        for r in layout.replicas(services)
        if r.workload.name in ("catalog", "calc")
    }
    assert variants["catalog-0"] == "a" and variants["catalog-canary-0"] == "b"
    assert variants["calc-0"] is None  # no A/B test, no variant

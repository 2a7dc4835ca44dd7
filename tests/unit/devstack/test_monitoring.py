"""devstack's monitoring: exporters, Prometheus' jobs and rules, and the console pages it
renders from helm/agora/monitoring/panels.yaml (whose every query promtool parses)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack import monitoring, render
from devstack.layout import Layout
from devstack.topology import load_values, workloads

PANELS = monitoring.load_panels()
SECTIONS = ("overview", "service")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AGORA_VALUES_EXTRA", raising=False)
    return workloads(load_values())


def all_panels():
    return [(section, panel) for section in SECTIONS for panel in PANELS[section]]


def test_every_panel_names_its_unit_and_a_form_for_each_place() -> None:
    for section, panel in all_panels():
        assert panel["unit"] in PANELS["units"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            forms = set(target) - {"legend"}
            assert forms in ({"expr"}, {"devstack"}, {"cluster"}, {"devstack", "cluster"}), target
            # console graphs drop whatever follows a legend's last label
            if "{{" in target["legend"]:
                assert target["legend"].endswith("}}"), target["legend"]
        assert monitoring.devstack_targets(panel) or section == "overview", panel["title"]


@pytest.mark.parametrize("place", ["devstack", "cluster"])
def test_every_query_parses(place: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression, in both forms."""
    rules = []
    for _, panel in all_panels():
        for target in panel["targets"]:
            expr = target.get(place, target.get("expr"))
            if expr is None:
                continue
            expr = expr.replace("$service", "catalog|users").replace("$namespace", "agora")
            rules.append({"record": f"panel:{len(rules)}", "expr": expr})
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_page_per_service_and_an_overview(services) -> None:
    pages = monitoring.console_pages(services)
    assert set(pages) == {"agora.html"} | {f"agora-{w.name}.html" for w in services}
    everyone = "|".join(w.name for w in services)
    overview = pages["agora.html"]
    assert overview.count("new PromConsole.Graph(") == len(PANELS["overview"])
    assert f'service=~\\"{everyone}\\"' in overview
    catalog = pages["agora-catalog.html"]
    assert catalog.count("new PromConsole.Graph(") == len(PANELS["service"])
    assert 'service=~\\"catalog\\"' in catalog
    for name, content in pages.items():
        assert "$service" not in content and "cluster" not in content, name
        assert "container_cpu_usage_seconds_total" not in content  # a cluster-only source
        assert content.startswith("{{/*") and '{{ template "agora_head" . }}' in content


def test_legends_become_console_placeholders(services) -> None:
    catalog = monitoring.console_pages(services)["agora-catalog.html"]
    assert '"p99 [[track]]"' in catalog and "{{track}}" not in catalog


def test_the_pages_and_rules_are_written_under_the_run_directory(layout, services) -> None:
    monitoring.write(layout, services)
    assert (layout.consoles_dir / "agora.html").exists()
    assert {p.name for p in layout.console_libraries_dir.iterdir()} == {"prom.lib", "agora.lib"}
    slo = yaml.safe_load((layout.rules_dir / "slo.yaml").read_text())
    records = {(r["record"], r["labels"]["service"]) for r in slo["groups"][0]["rules"]}
    assert ("service:slo_availability_objective:ratio", "catalog") in records
    # a service that is gone loses its page
    monitoring.write(layout, services[:1])
    assert not (layout.consoles_dir / f"agora-{services[1].name}.html").exists()


def test_exporters_listen_on_loopback_ports_of_the_port_base(layout, services) -> None:
    exporters = monitoring.exporters(layout, services)
    assert [e.name for e in exporters] == list(monitoring.EXPORTER_NAMES)
    ports = [e.port for e in exporters] + [layout.nginx_status_port]
    assert len(set(ports)) == len(ports)
    assert all(layout.port_base < p < layout.port_base + 100 for p in ports)
    assert layout.prometheus_port not in ports
    for exporter in exporters:
        (listen,) = [a for a in exporter.command if "listen-address" in a]
        assert listen.endswith(f"=127.0.0.1:{exporter.port}"), exporter.name
    without_redis = [w for w in services if not w.redis]
    assert "redis-exporter" not in [e.name for e in monitoring.exporters(layout, without_redis)]


def test_prometheus_scrapes_the_exporters_and_loads_the_charts_rules(layout, services) -> None:
    config = yaml.safe_load(render.prometheus_yml(layout, services))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for exporter in monitoring.exporters(layout, services):
        assert jobs[exporter.name]["static_configs"] == [
            {"targets": [f"127.0.0.1:{exporter.port}"]}
        ]
    # one copy: the chart's files themselves, plus the objectives rendered from values
    chart_rules = sorted(str(p) for p in (monitoring.MONITORING / "rules").glob("*.yaml"))
    assert config["rule_files"] == [*chart_rules, str(layout.rules_dir / "slo.yaml")]
    assert {t["labels"]["track"] for t in jobs["agora"]["static_configs"]} == {"stable"}
    assert config["global"]["evaluation_interval"] == layout.evaluation_interval


def test_exporters_are_supervised_and_nginx_reports_on_its_own_listener(layout, services):
    dsns = {w.name: f"postgresql://{w.name}@127.0.0.1/{w.name}" for w in services}
    conf = render.supervisord_conf(layout, services, dsns, layout.run_dir / "pg")
    for name in monitoring.EXPORTER_NAMES:
        assert f"[program:{name}]" in conf
    assert "--web.console.templates=" in conf
    nginx = render.nginx_conf(layout, services)
    status = nginx.split("# stub_status", 1)[1]
    assert f"listen 127.0.0.1:{layout.nginx_status_port};" in status
    assert "location = /stub_status { stub_status; }" in status
    assert nginx.count("stub_status;") == 1  # nowhere else, the ingress least of all

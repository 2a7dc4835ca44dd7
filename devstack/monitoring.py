"""What devstack adds to watch itself, from the chart's own monitoring definition
(helm/agora/monitoring): the Debian exporters beside Prometheus, the rule files the chart
ships (one copy), the SLO objectives rendered from values.yaml, and console pages of the
panels the chart's Grafana dashboard shows (docs/operations.md).
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .layout import Layout
from .topology import REPO, Workload

MONITORING = REPO / "helm" / "agora" / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yaml"))
PANELS_FILE = MONITORING / "panels.yaml"
SLO_GROUP = "agora-slo-objectives"
# Debian's prometheus ships its console library among the examples; the pages use it
# (time control, drill-down links, number formatting) under their own head and menu.
CONSOLE_LIBRARY = Path("/usr/share/doc/prometheus/examples/console_libraries/prom.lib")
AGORA_LIBRARY = Path(__file__).resolve().parent / "consoles" / "agora.lib"
OVERVIEW_PAGE = "agora.html"


@dataclass(frozen=True)
class Exporter:
    """A supervised exporter: its program and scrape job are both called `name`."""

    name: str
    port: int
    command: list[str]  # the binary's name first: render.py finds it on PATH
    env: dict[str, str] = field(default_factory=dict)


def exporters(layout: Layout, workloads: list[Workload]) -> list[Exporter]:
    """Debian's exporters for what devstack runs, each on 127.0.0.1 and a port of its own."""
    listen = "127.0.0.1:{}".format
    result = [
        Exporter(
            "node-exporter",
            layout.node_exporter_port,
            # The machine's CPU, memory and network (loopback included): what a dev stack
            # shares with everything else running here. The other collectors are noise.
            [
                "prometheus-node-exporter",
                f"--web.listen-address={listen(layout.node_exporter_port)}",
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.netdev",
                "--collector.netdev.device-exclude=^$",  # not even loopback (the default)
                "--collector.loadavg",
            ],
        ),
        Exporter(
            "nginx-exporter",
            layout.nginx_exporter_port,
            [
                "prometheus-nginx-exporter",
                f"-nginx.scrape-uri=http://{listen(layout.nginx_status_port)}/stub_status",
                f"-web.listen-address={listen(layout.nginx_exporter_port)}",
                "-nginx.retries=30",  # nginx starts beside it
                "-nginx.retry-interval=1s",
            ],
        ),
        Exporter(
            "postgres-exporter",
            layout.postgres_exporter_port,
            [
                "prometheus-postgres-exporter",
                f"--web.listen-address={listen(layout.postgres_exporter_port)}",
                "--log.level=warn",
            ],
            # The admin role over the private socket (trusted, like devstack's own calls).
            env={
                "DATA_SOURCE_NAME": f"host={layout.socket_dir} port={layout.postgres_port} "
                "user=postgres dbname=postgres sslmode=disable"
            },
        ),
    ]
    if any(w.redis for w in workloads):
        result.append(
            Exporter(
                "redis-exporter",
                layout.redis_exporter_port,
                [
                    "prometheus-redis-exporter",
                    f"-redis.addr=redis://127.0.0.1:{layout.redis_port}",
                    f"-web.listen-address={listen(layout.redis_exporter_port)}",
                ],
            )
        )
    return result


EXPORTER_NAMES = ("node-exporter", "nginx-exporter", "postgres-exporter", "redis-exporter")


def scrape_configs(layout: Layout, workloads: list[Workload]) -> list[dict[str, Any]]:
    return [
        {"job_name": e.name, "static_configs": [{"targets": [f"127.0.0.1:{e.port}"]}]}
        for e in exporters(layout, workloads)
    ]


# ---------------------------------------------------------------- rules


def le_label(seconds: float) -> str:
    """A bucket bound as prometheus-client writes it in `le` (0.25, 1.0, 10.0)."""
    return repr(float(seconds))


def slo_rules(workloads: list[Workload]) -> dict[str, Any]:
    """The objectives of every service as series the SLO alerts compare against; the
    chart renders the same group from the same values (templates/_monitoring.tpl)."""
    rules: list[dict[str, Any]] = []
    for workload in workloads:
        slo = workload.raw["slo"]
        service = {"service": workload.name}
        rules += [
            {
                "record": "service:slo_availability_objective:ratio",
                "expr": f"vector({slo['availability']} / 100)",
                "labels": service,
            },
            {
                "record": "service:slo_latency_objective:ratio",
                "expr": f"vector({slo['latencyTarget']} / 100)",
                "labels": service,
            },
            {
                "record": "service:slo_latency_threshold:seconds",
                "expr": f"vector({slo['latencyMs']} / 1000)",
                "labels": {**service, "le": le_label(slo["latencyMs"] / 1000)},
            },
        ]
    return {"groups": [{"name": SLO_GROUP, "rules": rules}]}


def rule_files(layout: Layout) -> list[str]:
    return [str(path) for path in RULE_FILES] + [str(layout.rules_dir / "slo.yaml")]


# ---------------------------------------------------------------- console pages


def load_panels() -> dict[str, Any]:
    with PANELS_FILE.open() as handle:
        return yaml.safe_load(handle)


def devstack_targets(panel: dict[str, Any]) -> list[tuple[str, str]]:
    """(expression, legend) of a panel's targets as devstack draws them."""
    found = []
    for target in panel["targets"]:
        expr = target.get("devstack", target.get("expr"))
        if expr is not None:
            found.append((" ".join(expr.split()), target["legend"]))
    return found


def console_legend(legend: str) -> str:
    """Grafana's {{label}} as the console graphs write it: [[label]]."""
    return legend.replace("{{", "[[").replace("}}", "]]")


def service_regex(names: list[str]) -> str:
    return "|".join(names)


def graph(index: int, panel: dict[str, Any], unit: dict[str, str], services: str) -> str:
    targets = [(e.replace("$service", services), leg) for e, leg in devstack_targets(panel)]
    options = {
        "expr": [expr for expr, _ in targets],
        "name": [console_legend(legend) for _, legend in targets],
        "min": 0,
        "yUnits": unit["suffix"],
        "yTitle": "",
    }
    # the formatters are JavaScript functions, not JSON
    formatter = f"PromConsole.NumberFormatter.{unit['formatter']}"
    script = (
        json.dumps(options)[:-1]
        + f', "node": document.querySelector("#panel-{index}"),'
        + f' "yAxisFormatter": {formatter}, "yHoverFormatter": {formatter}}}'
    )
    if "{{" in script:  # would be read as a Go template action
        raise ValueError(f"panel {panel['title']!r}: '{{{{' in an expression")
    traffic = " data-traffic" if panel.get("traffic") else ""
    return (
        f'<div class="agora-panel"{traffic}>\n<h3>{html.escape(panel["title"])}</h3>\n'
        f'<div id="panel-{index}"></div>\n<script>new PromConsole.Graph({script});</script>\n'
        "</div>"
    )


def service_page(workload: Workload) -> str:
    return f"agora-{workload.name}.html"


def page(title: str, body: list[str], intro: str) -> str:
    return "\n".join(
        [
            "{{/* Generated by devstack from helm/agora/monitoring/panels.yaml. */}}",
            '{{ template "agora_head" . }}',
            '{{ template "agora_services_table" . }}',
            '{{ template "prom_content_head" . }}',
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="agora-intro">{intro}</p>',
            '<div class="agora-panels">',
            *body,
            "</div>",
            '{{ template "prom_content_tail" . }}',
            '{{ template "tail" }}',
            "",
        ]
    )


def console_pages(workloads: list[Workload]) -> dict[str, str]:
    """agora.html (every service) and agora-<service>.html, from panels.yaml."""
    panels = load_panels()
    units = panels["units"]
    everyone = service_regex([w.name for w in workloads])
    links = (
        'Alerts: <a href="{{ pathPrefix }}/classic/alerts">firing and pending</a>, '
        '<a href="{{ pathPrefix }}/classic/rules">rules</a>, '
        '<a href="{{ pathPrefix }}/classic/targets">targets</a>. '
        "What each panel and alert means: docs/operations.md."
    )
    pages = {
        OVERVIEW_PAGE: page(
            "Agora",
            [
                graph(i, p, units[p["unit"]], everyone)
                for i, p in enumerate(panels["overview"], start=1)
            ],
            links,
        )
    }
    for workload in workloads:
        pages[service_page(workload)] = page(
            workload.name,
            [
                graph(i, p, units[p["unit"]], workload.name)
                for i, p in enumerate(panels["service"], start=1)
            ],
            f'<a href="{OVERVIEW_PAGE}">Overview</a>. {links}',
        )
    return pages


def write(layout: Layout, workloads: list[Workload]) -> None:
    """The SLO rules, the console library and the pages, under the run directory."""
    if not CONSOLE_LIBRARY.exists():
        raise FileNotFoundError(
            f"{CONSOLE_LIBRARY} is missing: reinstall Debian's prometheus package "
            "(apt-get install --reinstall prometheus) with its documentation"
        )
    layout.rules_dir.mkdir(parents=True, exist_ok=True)
    (layout.rules_dir / "slo.yaml").write_text(
        "# Generated by devstack from helm/agora/values.yaml (slo:).\n"
        + yaml.safe_dump(slo_rules(workloads), sort_keys=False)
    )
    libraries, consoles = layout.console_libraries_dir, layout.consoles_dir
    for directory in (libraries, consoles):
        if directory.exists():
            shutil.rmtree(directory)  # pages of services that are gone go too
        directory.mkdir(parents=True)
    shutil.copy(CONSOLE_LIBRARY, libraries / CONSOLE_LIBRARY.name)
    shutil.copy(AGORA_LIBRARY, libraries / AGORA_LIBRARY.name)
    for name, content in console_pages(workloads).items():
        (consoles / name).write_text(content)


def prometheus_flags(layout: Layout) -> list[str]:
    return [
        f"--web.console.templates={layout.consoles_dir}",
        f"--web.console.libraries={layout.console_libraries_dir}",
    ]


def dashboard_url(layout: Layout) -> str:
    return f"{layout.prometheus_url}/consoles/{OVERVIEW_PAGE}"

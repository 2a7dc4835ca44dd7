"""devstack's dashboards (Prometheus console pages rendered from
helm/agora/monitoring/panels.yaml) in Chromium: after traffic, every panel has data."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page

from devstack.topology import workloads
from tests.conftest import prometheus_query, wait_until

SERVICES = workloads()
CALLED = [w.name for w in SERVICES if w.ingress]  # the services the test calls itself

# Every graph has asked Prometheus and drawn something: lines, or its error text.
GRAPHS_DONE = """() => [...document.querySelectorAll('.agora-panel .rickshaw_graph')]
    .every(graph => graph.querySelector('svg, .prom_graph_error'))"""
PANELS = """() => [...document.querySelectorAll('.agora-panel')].map(panel => ({
    title: panel.querySelector('h3').textContent,
    traffic: panel.hasAttribute('data-traffic'),
    error: panel.querySelector('.prom_graph_error')?.textContent || null,
    lines: panel.querySelectorAll('svg path').length,
}))"""


@pytest.fixture(scope="module")
def traffic(agora, prometheus) -> Iterator[None]:
    """Requests to every service the ingress routes to, until the rules (the 1h ones are
    evaluated once a minute) have them."""
    for _ in range(20):
        for name in CALLED:
            assert agora.get(f"/api/v1/{name}/openapi.json").status_code == 200

    def recorded() -> bool:
        found = prometheus_query(prometheus, "service:http_error_ratio:ratio_rate1h")
        return set(CALLED) <= {series["metric"]["service"] for series in found}

    wait_until(recorded, 90, "the 1h rules have not seen every service", interval=1)
    yield


def panels_of(page: Page, url: str) -> list[dict]:
    page.goto(url)
    page.wait_for_function(GRAPHS_DONE, timeout=30_000)
    return page.evaluate(PANELS)


def dashboard(name: str) -> str:
    return f"{os.environ['PROMETHEUS_URL']}/consoles/{name}"


def test_the_overview_shows_data_in_every_panel(page: Page, traffic) -> None:
    panels = panels_of(page, dashboard("agora.html"))
    assert len(panels) >= 10
    empty = [p["title"] for p in panels if p["error"] or not p["lines"]]
    assert not empty, f"panels without data: {empty}"
    # the table of services links each service's page
    for workload in SERVICES:
        assert page.locator(f'a[href="agora-{workload.name}.html"]').count() >= 1


@pytest.mark.parametrize("service", [w.name for w in SERVICES])
def test_every_service_page_shows_its_data(page: Page, traffic, service: str) -> None:
    panels = panels_of(page, dashboard(f"agora-{service}.html"))
    assert page.locator("h1").text_content() == service
    # a service nobody calls through the ingress has no requests of its own to show
    expected = [p for p in panels if service in CALLED or not p["traffic"]]
    empty = [p["title"] for p in expected if p["error"] or not p["lines"]]
    assert expected and not empty, f"{service}: panels without data: {empty}"


def test_the_alerts_page_lists_the_rules(prometheus) -> None:
    page = httpx.get(f"{os.environ['PROMETHEUS_URL']}/classic/alerts", timeout=10)
    assert page.status_code == 200
    for alert in ("AgoraErrorBudgetBurnFast", "AgoraTargetDown", "AgoraRedisMemoryNearLimit"):
        assert alert in page.text

"""devstack's reading of values.yaml: extra values files, and upstreams switched off."""

from __future__ import annotations

import pytest

from devstack.topology import REPO, databases, load_values, workloads

OVERRIDES_ENV = "AGORA_VALUES_EXTRA"


def by_name(values):
    return {w.name: w for w in workloads(values)}


def test_facts_calls_factsource_by_default(monkeypatch):
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    services = by_name(None)
    assert services["facts"].upstreams == ["factsource"]
    assert services["factsource"].env["ARTIFICIAL_LATENCY_MS"] == "0"
    assert "/api/v1/cats" in services["facts"].ingress


def test_a_disabled_upstream_is_dropped(monkeypatch):
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    values = load_values()
    values["services"]["factsource"]["enabled"] = False
    services = by_name(values)
    assert "factsource" not in services
    assert services["facts"].upstreams == []  # so facts falls back to the public API


def test_an_unknown_upstream_is_an_error(monkeypatch):
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    values = load_values()
    values["services"]["facts"]["upstreams"] = ["factsauce"]
    with pytest.raises(ValueError, match="factsauce"):
        workloads(values)


def test_overrides_files_merge_over_values_in_order(monkeypatch, tmp_path):
    first = tmp_path / "first.yaml"
    first.write_text("services:\n  factsource:\n    env: {ARTIFICIAL_LATENCY_MS: '7'}\n")
    second = tmp_path / "second.yaml"
    second.write_text("services:\n  factsource:\n    replicas: 2\n")
    monkeypatch.setenv(OVERRIDES_ENV, f"{first}:{second}")
    factsource = by_name(None)["factsource"]
    assert factsource.env["ARTIFICIAL_LATENCY_MS"] == "7"
    assert factsource.env["LOG_LEVEL"] == "INFO"  # maps merge: the default's keys stay
    assert factsource.replicas == 2


def test_the_bench_overrides_give_factsource_its_latency(monkeypatch):
    monkeypatch.setenv(OVERRIDES_ENV, "bench/values.yaml")  # relative to the repository
    assert (REPO / "bench" / "values.yaml").exists()
    assert by_name(None)["factsource"].env["ARTIFICIAL_LATENCY_MS"] == "50"


def test_crawler_worker_shares_the_crawlers_database(monkeypatch):
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    services = by_name(None)
    assert services["crawler"].database == "crawler"
    assert services["crawler-worker"].database == "crawler"
    assert services["calc"].database is None
    listed = databases(list(services.values()))
    assert listed.count("crawler") == 1 and "crawler-worker" not in listed
    # crawler switched off: its database is still made and migrated for the workers
    values = load_values()
    values["services"]["crawler"]["enabled"] = False
    assert "crawler" in databases(workloads(values))


@pytest.mark.parametrize(
    ("service", "setting", "complaint"),
    [
        ("crawler-worker", {"database": "ledger"}, "database ledger is not a service"),
        ("calc", {"database": "catalog"}, "database needs postgres: true"),
    ],
)
def test_a_wrong_database_is_an_error(monkeypatch, service, setting, complaint):
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    values = load_values()
    values["services"][service].update(setting)
    with pytest.raises(ValueError, match=complaint):
        workloads(values)

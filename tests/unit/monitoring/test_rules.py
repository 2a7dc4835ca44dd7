"""The recording and alerting rules of helm/agora/monitoring/rules, checked and unit-tested
by Debian's promtool (rules_test.yaml: input series, expected values and alerts)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import monitoring
from devstack.topology import REPO, load_values, workloads

HERE = Path(__file__).resolve().parent
RULES_TEST = HERE / "rules_test.yaml"
OPERATIONS = REPO / "docs" / "operations.md"
# The services of rules_test.yaml, with the default objectives (99.9 %, 250 ms for 99 %).
OBJECTIVES = ("shop", "simmer", "sluggish", "calm")


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not installed: run `make setup` (Debian's prometheus)")
    return found


def objectives_file(directory: Path, names: tuple[str, ...] = OBJECTIVES) -> Path:
    values = load_values()
    values["services"] = {name: {"command": ["true"]} for name in names}
    path = directory / "slo.yaml"
    path.write_text(yaml.safe_dump(monitoring.slo_rules(workloads(values))))
    return path


def alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load((monitoring.MONITORING / "rules" / "alerts.yaml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules_with_the_objectives_of_values_yaml(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(yaml.safe_dump(monitoring.slo_rules(workloads(load_values()))))
    result = subprocess.run(
        [promtool(), "check", "rules", *map(str, monitoring.RULE_FILES), str(slo)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    spec = yaml.safe_load(RULES_TEST.read_text())
    spec["rule_files"] = [str(p) for p in monitoring.RULE_FILES] + [str(objectives_file(tmp_path))]
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = subprocess.run(
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    spec = yaml.safe_load(RULES_TEST.read_text())
    cases: dict[str, list[int]] = {}
    for test in spec["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(len(case["exp_alerts"]))
    for alert in alerts():
        counts = cases.get(alert["alert"], [])
        assert any(counts), f"{alert['alert']}: no case where it fires"
        assert 0 in counts, f"{alert['alert']}: no case where it stays quiet"


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of a Markdown document."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_a_summary_a_description_and_a_runbook_section() -> None:
    sections = anchors(OPERATIONS.read_text())
    for alert in alerts():
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        assert alert["labels"]["severity"] in ("page", "ticket"), alert["alert"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor == alert["alert"].lower()
        assert anchor in sections, f"docs/operations.md has no section {alert['alert']}"


def test_the_objectives_follow_values(tmp_path: Path) -> None:
    values = load_values()
    values["services"] = {
        "quick": {"command": ["true"], "slo": {"availability": 99.5, "latencyMs": 1000}}
    }
    (group,) = monitoring.slo_rules(workloads(values))["groups"]
    by_record = {rule["record"]: rule for rule in group["rules"]}
    assert by_record["service:slo_availability_objective:ratio"]["expr"] == "vector(99.5 / 100)"
    assert by_record["service:slo_latency_objective:ratio"]["expr"] == "vector(99 / 100)"
    threshold = by_record["service:slo_latency_threshold:seconds"]
    # the le label as the kit's histogram writes it, so the rules can join on it
    assert threshold["labels"] == {"service": "quick", "le": "1.0"}
    assert threshold["expr"] == "vector(1000 / 1000)"

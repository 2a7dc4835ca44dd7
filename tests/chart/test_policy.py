"""checkov over every render and the Dockerfile, hadolint and yamllint: zero failures
beyond the deliberate skips of tools/policy-skips.yaml (each with its reason)."""

from __future__ import annotations

import copy
import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, VALUE_SETS, Rendered, render_text, value_args

SKIPS_FILE = REPO / "tools" / "policy-skips.yaml"
CHECKOV = REPO / ".venv" / "checkov" / "bin" / "checkov"
VENV_BIN = REPO / ".venv" / "bin"
YAML_FILES = [
    REPO / "helm" / "agora" / "values.yaml",
    REPO / "helm" / "agora" / "Chart.yaml",
    *sorted((REPO / "k8s").glob("*.yaml")),
    *sorted((REPO / "tests" / "chart" / "values").glob("*.yaml")),
    SKIPS_FILE,
]


SKIPS: dict[str, list[dict[str, Any]]] = yaml.safe_load(SKIPS_FILE.read_text())


def skip_for(check: str, obj: str) -> dict[str, Any] | None:
    for skip in SKIPS["checkov"]:
        if skip["check"] == check and any(fnmatch.fnmatch(obj, p) for p in skip["objects"]):
            return skip
    return None


def checkov_object(resource: str) -> str:
    """checkov's "Kind.namespace.name" (or "/Dockerfile.FROM") as "Kind/name"."""
    kind, _, rest = resource.partition(".")
    return f"{kind}/{rest.partition('.')[2] or rest}"


def checkov(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """checkov offline (no download of its guidelines), failed checks as JSON."""
    if not CHECKOV.exists():
        raise RuntimeError(f"{CHECKOV} is missing: run `make setup`")
    return subprocess.run(
        [CHECKOV, *args, "--output", "json", "--skip-download", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def checkov_failures(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    """(check, object, file) of every failed check, over all renders and the Dockerfile."""
    folder = tmp_path_factory.mktemp("renders")
    for name, files in VALUE_SETS.items():
        (folder / f"{name}.yaml").write_text(render_text(*value_args(files)))
    (folder / "Dockerfile").write_text((REPO / "Dockerfile").read_text())
    result = checkov("--directory", folder, "--framework", "kubernetes", "dockerfile")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"kubernetes", "dockerfile"}, result.stderr
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    return [
        (failed["check_id"], checkov_object(failed["resource"]), failed["file_path"])
        for report in reports
        for failed in report["results"]["failed_checks"]
    ]


def test_checkov_finds_nothing_beyond_the_listed_skips(
    checkov_failures: list[tuple[str, str, str]],
) -> None:
    unexpected = [f for f in checkov_failures if skip_for(f[0], f[1]) is None]
    assert not unexpected, "\n".join(f"{c} {o} ({f})" for c, o, f in unexpected)


def test_every_skip_is_needed_and_explained(
    checkov_failures: list[tuple[str, str, str]],
) -> None:
    for skip in SKIPS["checkov"]:
        assert len(skip["reason"]) > 40, f"{skip['check']}: say why"
        assert any(skip_for(check, obj) is skip for check, obj, _ in checkov_failures), (
            f"{skip['check']} {skip['objects']} no longer fails: remove the skip"
        )


def test_checkov_really_checks(renders: dict[str, Rendered], tmp_path: Path) -> None:
    """A privileged container must be caught, or the zero above means nothing."""
    deployment = copy.deepcopy(renders["default"].get("Deployment", "catalog"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True}
    (tmp_path / "privileged.yaml").write_text(yaml.safe_dump(deployment))
    result = checkov(
        "--file", tmp_path / "privileged.yaml", "--framework", "kubernetes", "--check", "CKV_K8S_16"
    )
    failed = json.loads(result.stdout)["results"]["failed_checks"]
    assert [f["check_id"] for f in failed] == ["CKV_K8S_16"]


def test_hadolint_passes_the_dockerfile() -> None:
    ignores = [arg for skip in SKIPS["hadolint"] for arg in ("--ignore", skip["check"])]
    result = subprocess.run(
        [VENV_BIN / "hadolint", *ignores, REPO / "Dockerfile"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(Path(p).relative_to(REPO)))
def test_yamllint(path: Path) -> None:
    config = "{extends: default, rules: {line-length: {max: 100}, document-start: disable}}"
    result = subprocess.run(
        [VENV_BIN / "yamllint", "--strict", "-d", config, path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout

"""The chart rendered by a real helm over the value sets users run, as Python objects."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.topology import REPO, VALUES, Workload, deep_merge, load_values, workloads

CHART = REPO / "helm" / "agora"
RELEASE = "agora"
NAMESPACE = "agora"
HERE = Path(__file__).resolve().parent

# name -> values files layered over values.yaml, as `helm -f` layers them
VALUE_SETS: dict[str, list[Path]] = {
    "default": [],
    "kind": [REPO / "k8s" / "values-kind.yaml"],
    "external": [HERE / "values" / "external.yaml"],
    "hpa": [HERE / "values" / "hpa.yaml"],
    "no-network-policies": [HERE / "values" / "no-network-policies.yaml"],
    "no-prometheus": [HERE / "values" / "no-prometheus.yaml"],
    "operator": [HERE / "values" / "operator.yaml"],
    "monitoring": [HERE / "values" / "monitoring.yaml"],
    "no-monitoring": [HERE / "values" / "no-monitoring.yaml"],
    "tracing-collector": [HERE / "values" / "tracing-collector.yaml"],
    "tracing-endpoint": [HERE / "values" / "tracing-endpoint.yaml"],
    "canary": [HERE / "values" / "canary.yaml"],
    "canary-hpa": [HERE / "values" / "canary-hpa.yaml"],
    "socialcompat": [HERE / "values" / "socialcompat.yaml"],
}


def helm_binary() -> str:
    venv_bin = str(REPO / ".venv" / "bin")
    found = shutil.which("helm", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if not found:
        raise RuntimeError("helm is not installed: run `make setup` (tools/install-k8s-tools.sh)")
    return found


def helm(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *map(str, args)], capture_output=True, text=True, check=check
    )


def value_args(files: list[Path]) -> list[str]:
    return [arg for path in files for arg in ("-f", str(path))]


def render_text(*args: str) -> str:
    result = helm("template", RELEASE, CHART, "--namespace", NAMESPACE, *args, check=False)
    if result.returncode != 0:
        raise AssertionError(f"helm template {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class Rendered:
    """One render of the chart: its objects, plus the values and workloads behind it."""

    name: str
    objects: list[dict[str, Any]]
    values: dict[str, Any]

    @cached_property
    def workloads(self) -> list[Workload]:
        return workloads(self.values, chart=True)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return found[0] if found else None

    def pod_templates(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(owner object, pod template {metadata, spec}) of everything that runs pods."""
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
                yield obj, obj["spec"]["template"]
            elif obj["kind"] == "Pod":
                yield obj, {"metadata": obj["metadata"], "spec": obj["spec"]}

    def env_of(self, deployment: dict[str, Any]) -> dict[str, str]:
        """A service container's environment: its env ConfigMap, then its env list
        (secret references shown as `secret:<name>/<key>`)."""
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(self.get("ConfigMap", source["configMapRef"]["name"])["data"])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = f"secret:{ref['name']}/{ref['key']}"
        return env


def effective_values(files: list[Path]) -> dict[str, Any]:
    values = load_values(VALUES)
    for path in files:
        values = deep_merge(values, yaml.safe_load(path.read_text()) or {})
    return values


def render(name: str, files: list[Path], *extra: str) -> Rendered:
    text = render_text(*value_args(files), *extra)
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(name, objects, effective_values(files))


@pytest.fixture(scope="session")
def renders() -> dict[str, Rendered]:
    return {name: render(name, files) for name, files in VALUE_SETS.items()}


@pytest.fixture(params=list(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    return renders[request.param]


@pytest.fixture
def default_render(renders: dict[str, Rendered]) -> Rendered:
    return renders["default"]

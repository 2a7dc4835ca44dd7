"""Every service does what its OpenAPI document says, as schemathesis sees it.

For each service of values.yaml (so a service added there is covered with no change
here), schemathesis reads the service's own document and runs every check (server
errors, status codes, content types, response schemas and headers, schema-valid data
accepted and schema-violating data refused, undeclared methods, use after delete, ...)
through every phase, the stateful one included, with a fixed seed and bounded counts:
schemathesis.toml beside this file. A check turned off for an operation is listed, with
its reason, in exceptions.toml; nothing else is.

A service the ingress routes its document to is reached through the ingress (AGORA_URL),
as a user would; one without a route (factsource) at its devstack Service address.

The suite leaves random data behind (products, users, orders...): `make integration`
runs it last, after the suites that read the demo data.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.layout import Layout
from devstack.render import venv_bin
from devstack.topology import REPO, openapi_path, workloads
from tests.conftest import answers_ready, api_base, wait_until

HERE = Path(__file__).parent
SETTINGS = HERE / "schemathesis.toml"
EXCEPTIONS: dict[str, list[dict[str, object]]] = tomllib.loads(
    (HERE / "exceptions.toml").read_text()
)
SERVICES = workloads()
BY_NAME = {workload.name: workload for workload in SERVICES}
CHECKS = frozenset(
    {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
        "object_level_authorization",
    }
)
FIELDS = ("operation", "checks", "statuses", "reason")
# What these checks take as no failure, before an exception adds to it (schemathesis'
# own defaults).
DEFAULT_STATUSES = {"not_a_server_error": ["2xx", "3xx", "4xx"]}
PHASES = "examples,coverage,fuzzing,stateful"
RUN_LIMIT_SECONDS = 240  # per service; a few dozen seconds is usual


def devstack() -> Layout | None:
    return Layout.from_env() if os.environ.get("AGORA_RUN_DIR") else None


def split_operation(operation: str) -> tuple[str | None, str]:
    method, _, path = operation.rpartition(" ")
    return (method or None), path


def config_for(service: str) -> str:
    """schemathesis.toml plus one [[operations]] table per exception of the service."""
    blocks = [SETTINGS.read_text()]
    for exception in EXCEPTIONS.get(service, []):
        method, path = split_operation(str(exception["operation"]))
        lines = ["", "[[operations]]", f"include-path = {json.dumps(path)}"]
        if method:
            lines.append(f"include-method = {json.dumps(method)}")
        lines += [f"checks.{check}.enabled = false" for check in exception.get("checks", [])]
        for check, extra in dict(exception.get("statuses", {})).items():
            expected = [*DEFAULT_STATUSES[check], *map(str, extra)]
            lines.append(f"checks.{check}.expected-statuses = {json.dumps(expected)}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


def websocket_paths(document: dict[str, Any]) -> list[str]:
    """Paths of WebSocket routes: their GET answers 101."""
    return [
        path
        for path, item in document["paths"].items()
        if "101" in item.get("get", {}).get("responses", {})
    ]


def test_every_exception_names_a_service_checks_and_a_reason():
    for service, entries in EXCEPTIONS.items():
        assert service in BY_NAME, f"exceptions.toml: {service} is not a service in values.yaml"
        for entry in entries:
            assert {"operation", "reason"} <= set(entry) <= {*FIELDS}, entry
            named = {*entry.get("checks", []), *dict(entry.get("statuses", {}))}
            assert named and named <= CHECKS, entry
            assert set(dict(entry.get("statuses", {}))) <= set(DEFAULT_STATUSES), entry
            assert len(str(entry["reason"]).split()) >= 5, f"give the reason: {entry}"


@pytest.mark.parametrize("service", list(BY_NAME))
def test_the_service_does_what_its_document_says(service, agora_url):
    workload = BY_NAME[service]
    base = api_base(workload, SERVICES, agora_url)
    if base is None:
        pytest.skip(f"{service} has no ingress route; its Service is reachable on devstack only")
    layout = devstack()
    if layout is not None:  # an earlier suite may have just restarted a replica
        for replica in layout.replicas(SERVICES):
            if replica.workload is workload:
                url = f"http://127.0.0.1:{replica.port}"
                wait_until(lambda url=url: answers_ready(url), 60, f"{replica.name} not ready")
    document = httpx.get(base + openapi_path(service), timeout=10).json()
    assert document["paths"], f"{service} declares no operation"
    for entry in EXCEPTIONS.get(service, []):
        method, path = split_operation(str(entry["operation"]))
        assert path in document["paths"], f"exceptions.toml: {service} has no {path}"
        assert method is None or method.lower() in document["paths"][path], entry

    out = (layout.run_dir if layout else REPO / ".run") / "contract"
    out.mkdir(parents=True, exist_ok=True)
    config = out / f"{service}.toml"
    config.write_text(config_for(service))
    command = [venv_bin("schemathesis"), "--config-file", str(config), "run"]
    # No `--checks all`: every check is on by default (schemathesis.toml adds the response
    # time limit), and a check named on the command line overrides an operation's
    # `enabled = false`, which would make exceptions.toml void.
    command += [base + openapi_path(service), "--url", base]
    command += ["--phases", PHASES, "--no-color"]
    for path in websocket_paths(document):  # exceptions.toml says why
        command += ["--exclude-path", path]
    result = subprocess.run(
        command,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_SECONDS,
        check=False,
    )
    report = out / f"{service}.txt"
    report.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"schemathesis found failures in {service} (whole report: {report}):\n"
        + (result.stdout + result.stderr)[-12000:]
    )

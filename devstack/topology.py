"""The workloads described by helm/agora/values.yaml, as devstack and the tests see them."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
VALUES = REPO / "helm" / "agora" / "values.yaml"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key, anything else (lists included) is replaced: like Helm's
    mergeOverwrite, which the chart uses for the same fallback."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class Workload:
    name: str
    command: list[str]
    port: int
    replicas: int
    workers: int
    ingress: list[str]
    websockets: list[str]  # ingress prefixes of WebSocket routes
    postgres: bool
    # The database it connects to: its own (postgres: true), or, in a bench overlay, the
    # one of the service named by `database:` (bench/peers read catalog's rows). The
    # chart renders only the first.
    database: str | None
    redis: bool
    auth: str  # none, verify (the public key) or sign (the private key too)
    upstreams: list[str]
    env: dict[str, str]
    probes: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)


def load_values(path: Path = VALUES) -> dict[str, Any]:
    """values.yaml, then each file in AGORA_VALUES_EXTRA (':'-separated) merged on top,
    as `helm -f` would: how `make bench` adds its baseline apps, say."""
    with path.open() as handle:
        values = yaml.safe_load(handle)
    for extra in filter(None, os.environ.get("AGORA_VALUES_EXTRA", "").split(":")):
        with (REPO / extra).open() as handle:
            values = deep_merge(values, yaml.safe_load(handle) or {})
    return values


def workloads(values: dict[str, Any] | None = None) -> list[Workload]:
    """The enabled services, in name order, with defaults applied and checked.

    An upstream that names a disabled service is dropped (no <NAME>_URL): the caller then
    uses its own default, e.g. facts the public API when factsource is off. One that
    names no service at all is an error.
    """
    values = values if values is not None else load_values()
    default = values.get("default", {})
    specs = {
        name: deep_merge(default, entry or {})
        for name, entry in sorted(values.get("services", {}).items())
    }
    enabled = {name for name, spec in specs.items() if spec.get("enabled", True)}
    result = []
    for name, spec in specs.items():
        if name not in enabled:
            continue
        unknown = [up for up in spec.get("upstreams", []) if up not in specs]
        if unknown:
            raise ValueError(f"{name}: upstreams {unknown} are not services")
        database = spec.get("database") or (name if spec.get("postgres") else None)
        if database and not (database in enabled and specs[database].get("postgres")):
            raise ValueError(f"{name}: database {database!r} is not an enabled service's")
        result.append(
            Workload(
                name=name,
                command=[str(part) for part in spec["command"]],
                port=int(spec["port"]),
                replicas=int(spec["replicas"]),
                workers=int(spec["workers"]),
                ingress=list(spec.get("ingress", [])),
                websockets=list(spec.get("websockets", [])),
                postgres=bool(spec.get("postgres")),
                database=database,
                redis=bool(spec.get("redis")),
                auth=str(spec.get("auth", "none")),
                upstreams=[up for up in spec.get("upstreams", []) if up in enabled],
                env={key: str(value) for key, value in spec.get("env", {}).items()},
                probes=dict(spec["probes"]),
                raw=spec,
            )
        )
    return result


def url_variable(service: str) -> str:
    """The variable a caller reads a service's base URL from: order-events -> ORDER_EVENTS_URL."""
    return f"{service.upper().replace('-', '_')}_URL"


def upstream_env(workload: Workload, address_of: dict[str, str]) -> dict[str, str]:
    """<NAME>_URL for every upstream, given each service's base URL."""
    return {url_variable(up): address_of[up] for up in workload.upstreams}


def routes_to(prefix: str, path: str) -> bool:
    """Whether an ingress prefix takes `path`: Ingress' pathType Prefix (devstack's nginx
    routes the same way), element by element: /api/v1/facts takes /api/v1/facts/docs,
    not /api/v1/factsheet."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def ingress_target(services: list[Workload], path: str) -> Workload | None:
    """The workload the ingress sends `path` to: the longest prefix that takes it."""
    matches = [
        (len(prefix.rstrip("/")), workload)
        for workload in services
        for prefix in workload.ingress
        if routes_to(prefix, path)
    ]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def docs_path(service: str) -> str:
    """Where a service's Swagger UI is (services/kit/api.py: Api.docs_prefix)."""
    return f"/api/v1/{service}/docs"


def openapi_path(service: str) -> str:
    return f"/api/v1/{service}/openapi.json"

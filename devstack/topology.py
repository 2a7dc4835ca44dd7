"""The workloads described by helm/agora/values.yaml, as devstack and the tests see them."""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field, replace
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
class AbTest:
    """A canary as an A/B test: the split sticky per user, each track a named variant."""

    stable: str  # the variant stable serves
    canary: str  # the canary's
    cookie: str  # the cookie the ingress sets, whose value decides the variant


@dataclass(frozen=True)
class Canary:
    """`services.<name>.canary` when enabled: a second version beside the stable one."""

    replicas: int
    weight: int  # % of the requests without a header or cookie that say otherwise
    header: str  # "always": the canary, "never": stable
    cookie: str  # the same by a cookie; empty: none
    env: dict[str, str]  # over the service's env
    version: str
    ab: AbTest | None
    analysis: dict[str, Any] = field(repr=False, compare=False)


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
    database: str | None  # with postgres: its own (its name) or another service's
    redis: bool
    auth: str  # none, verify (the public key) or sign (the private key too)
    impersonation: str  # none, issue (users) or use (socialcompat): services/kit/impersonation.py
    upstreams: list[str]
    env: dict[str, str]
    probes: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)
    canary: Canary | None = None

    def canary_workload(self) -> Workload:
        """What the canary's replicas run: this service with the canary's env."""
        assert self.canary is not None
        return dataclasses.replace(
            self, env={**self.env, **self.canary.env}, replicas=self.canary.replicas, canary=None
        )


def canary_of(spec: dict[str, Any]) -> Canary | None:
    canary = spec.get("canary") or {}
    if not canary.get("enabled"):
        return None
    ab = canary.get("ab") or {}
    variants = ab.get("variants") or {}
    return Canary(
        replicas=int(canary.get("replicas", 1)),
        weight=int(canary.get("weight", 0)),
        header=str(canary.get("header") or "X-Canary"),
        cookie=str(canary.get("cookie") or ""),
        env={key: str(value) for key, value in (canary.get("env") or {}).items()},
        version=str(canary.get("version") or "canary"),
        ab=AbTest(
            stable=str(variants.get("stable", "a")),
            canary=str(variants.get("canary", "b")),
            cookie=str(ab.get("cookie") or "agora_ab"),
        )
        if ab.get("enabled")
        else None,
        analysis=dict(canary.get("analysis") or {}),
    )


def load_values(path: Path = VALUES) -> dict[str, Any]:
    """values.yaml, then each file in AGORA_VALUES_EXTRA (':'-separated) merged on top,
    as `helm -f` would: how `make bench` adds its baseline apps, say."""
    with path.open() as handle:
        values = yaml.safe_load(handle)
    for extra in filter(None, os.environ.get("AGORA_VALUES_EXTRA", "").split(":")):
        with (REPO / extra).open() as handle:
            values = deep_merge(values, yaml.safe_load(handle) or {})
    return values


def workloads(values: dict[str, Any] | None = None, *, chart: bool = False) -> list[Workload]:
    """The enabled services, in name order, with defaults applied and checked. devstack
    also runs those marked `devstack: true` (socialcompat); `chart=True` gives the set
    the chart renders.

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
    enabled = {
        name
        for name, spec in specs.items()
        if spec.get("enabled", True) or (not chart and spec.get("devstack", False))
    }
    result = []
    for name, spec in specs.items():
        if name not in enabled:
            continue
        unknown = [up for up in spec.get("upstreams", []) if up not in specs]
        if unknown:
            raise ValueError(f"{name}: upstreams {unknown} are not services")
        database = database_of(name, spec, specs)
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
                impersonation=str(spec.get("impersonation", "none")),
                upstreams=[up for up in spec.get("upstreams", []) if up in enabled],
                env={key: str(value) for key, value in spec.get("env", {}).items()},
                probes=dict(spec["probes"]),
                raw=spec,
                canary=canary_of(spec),
            )
        )
    if not any(w.impersonation == "use" for w in result):
        # As the chart: without a service that uses the credential nobody gets it (users
        # then has no internal routes at all).
        result = [replace(w, impersonation="none") for w in result]
    return result


def database_of(name: str, spec: dict[str, Any], specs: dict[str, Any]) -> str | None:
    """The database a service uses: None without postgres, else its own (named after it)
    or the one `database:` names, another service's (one bounded context); as the chart."""
    database = spec.get("database") or None
    if not spec.get("postgres"):
        if database:
            raise ValueError(f"{name}: database needs postgres: true")
        return None
    database = database or name
    if database not in specs:
        raise ValueError(f"{name}: database {database} is not a service")
    return database


def databases(services: list[Workload]) -> list[str]:
    """Each database the services use, once, in order: what is created and migrated."""
    return sorted({w.database for w in services if w.database})


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

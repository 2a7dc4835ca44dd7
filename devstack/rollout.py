"""Canaries on a running devstack: start one, set its weight, promote, roll back, look,
and analyse it with the cluster's code (services/kit/canary) against devstack's
Prometheus. docs/canary.md walks through them.

devstack runs one checkout, so a canary "version" is the same code with other settings:
its env (a fault-injection setting, say, to make a bad one on purpose) and a name.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from services.kit.canary.analysis import Decision, Outcome, Plan, run

from . import canary
from .layout import Layout, Replica
from .stack import (
    DevstackError,
    say,
    services_of,
    start_programs,
    stop_programs,
    supervisorctl,
    wait_ready,
    write_configs,
)
from .topology import Workload

NAME = re.compile(r"^[A-Za-z0-9_]+$")  # nginx variables: cookie names
# After a reload nginx's old workers finish what they hold, then stop; requests sent
# after this long go by the new configuration.
RELOAD_SETTLE_SECONDS = 0.5


def _workload(layout: Layout, service: str) -> Workload:
    found = [w for w in services_of(layout) if w.name == service]
    if not found:
        raise DevstackError(f"no service {service!r} in helm/agora/values.yaml")
    return found[0]


def _canary_replicas(layout: Layout, service: str) -> list[Replica]:
    return [
        r
        for r in layout.replicas(services_of(layout))
        if r.track == "canary" and r.workload.name == service
    ]


def _remove(layout: Layout, names: list[str]) -> None:
    """Stop programs that the written configuration no longer has (all at once), and
    drop them from supervisord; then Prometheus forgets their targets."""
    if names:
        stop_programs(layout, names)
        supervisorctl(layout, "reread")
        supervisorctl(layout, "update", *names, check=False)
    reload_proxy(layout)


def reload_proxy(layout: Layout) -> None:
    supervisorctl(layout, "signal", "HUP", "nginx")
    supervisorctl(layout, "signal", "HUP", "prometheus", check=False)
    time.sleep(RELOAD_SETTLE_SECONDS)


def start(
    layout: Layout,
    service: str,
    *,
    env: dict[str, str],
    version: str | None = None,
    weight: int | None = None,
    replicas: int | None = None,
    ab: bool = False,
    cookie: str | None = None,
) -> list[Replica]:
    """Canary replicas of `service` beside its stable ones, ready, then given traffic."""
    workload = _workload(layout, service)
    if not (workload.ingress or workload.websockets):
        raise DevstackError(f"{service} has no ingress routes: a canary would get no traffic")
    if weight is not None and not 0 <= weight <= 100:
        raise DevstackError(f"weight must be 0 to 100, not {weight}")
    if cookie and not NAME.match(cookie):
        raise DevstackError(f"cookie names are letters, digits and _, not {cookie!r}")
    entry: dict[str, Any] = {"enabled": True, "env": env}
    for key, value in (("version", version), ("weight", weight), ("replicas", replicas)):
        if value is not None:
            entry[key] = value
    if cookie:
        entry["cookie"] = cookie
    if ab:
        entry["ab"] = {"enabled": True}
    current = canary.state(layout)
    current["canaries"][service] = entry
    canary.save(layout, current)
    try:
        services = services_of(layout)
        write_configs(layout, services)
        started = _canary_replicas(layout, service)
        names = [r.name for r in started]
        supervisorctl(layout, "reread")
        supervisorctl(layout, "update", *names, check=False)
        start_programs(layout, names)
        for replica in started:
            wait_ready(layout, replica)
    except BaseException:
        rollback(layout, service)
        raise
    reload_proxy(layout)  # routes to the canary only now that it is ready
    workload = _workload(layout, service)
    assert workload.canary is not None
    say(
        f"canary of {service} ({workload.canary.version}) takes {workload.canary.weight} %"
        f" of its requests; {workload.canary.header}: always / never overrides"
    )
    return started


def set_weight(layout: Layout, service: str, weight: int) -> None:
    current = canary.state(layout)
    if service not in current["canaries"] or not current["canaries"][service].get("enabled"):
        raise DevstackError(f"{service} has no canary (make canary SERVICE={service})")
    if not 0 <= weight <= 100:
        raise DevstackError(f"weight must be 0 to 100, not {weight}")
    current["canaries"][service]["weight"] = weight
    canary.save(layout, current)
    write_configs(layout, services_of(layout))
    reload_proxy(layout)


def rollback(layout: Layout, service: str) -> None:
    """Back to stable alone: routes first, then the canary's replicas stop."""
    replicas = [r.name for r in _canary_replicas(layout, service)]
    current = canary.state(layout)
    current["canaries"][service] = {"enabled": False}
    canary.save(layout, current)
    write_configs(layout, services_of(layout))
    reload_proxy(layout)
    _remove(layout, replicas)
    say(f"{service}: canary rolled back; stable takes every request")


def promote(layout: Layout, service: str) -> None:
    """The canary's settings become stable's: each stable replica restarts with them in
    turn (the others serve meanwhile), then the canary goes as in a rollback."""
    workload = _workload(layout, service)
    if workload.canary is None:
        raise DevstackError(f"{service} has no canary (make canary SERVICE={service})")
    current = canary.state(layout)
    promoted = current["promoted"].get(service, {"env": {}})
    current["promoted"][service] = {
        "env": {**promoted.get("env", {}), **workload.canary.env},
        "version": workload.canary.version,
    }
    canary.save(layout, current)
    services = services_of(layout)
    write_configs(layout, services)
    supervisorctl(layout, "reread")
    for replica in layout.replicas(services):
        if replica.workload.name == service and replica.track == "stable":
            supervisorctl(layout, "update", replica.name)
            supervisorctl(layout, "start", replica.name, check=False)
            wait_ready(layout, replica)
    rollback(layout, service)
    say(f"{service}: {workload.canary.version} promoted to stable")


def status(layout: Layout) -> int:
    current = canary.state(layout)
    services = services_of(layout)
    with_canary = [w for w in services if w.canary]
    if not with_canary:
        print("no canary runs (make canary SERVICE=<name> ...)")
    replicas = layout.replicas(services)
    for workload in with_canary:
        spec = workload.canary
        assert spec is not None
        overrides = f"{spec.header}: always / never" + (
            f", cookie {spec.cookie}" if spec.cookie else ""
        )
        ab = (
            f", A/B {spec.ab.stable}/{spec.ab.canary} by cookie {spec.ab.cookie}" if spec.ab else ""
        )
        print(f"{workload.name}: canary {spec.version}, weight {spec.weight} %{ab}; {overrides}")
        if spec.env:
            print("  env over stable's: " + " ".join(f"{k}={v}" for k, v in spec.env.items()))
        for replica in replicas:
            if replica.workload.name == workload.name:
                url = f"http://127.0.0.1:{replica.port}{workload.probes['readiness']}"
                try:
                    ready = httpx.get(url, timeout=2).status_code == 200
                except httpx.HTTPError:
                    ready = False
                state = "ready" if ready else "NOT READY"
                print(f"  {replica.name:<22} {replica.track:<7} 127.0.0.1:{replica.port}  {state}")
    for name, promoted in current["promoted"].items():
        env = " ".join(f"{k}={v}" for k, v in promoted.get("env", {}).items())
        print(f"{name}: stable runs promoted {promoted.get('version', '?')} ({env or 'no env'})")
    return 0


class DevstackTraffic:
    """The analysis' traffic split in devstack: nginx's, through the functions above."""

    def __init__(self, layout: Layout, service: str) -> None:
        self.layout, self.service = layout, service

    async def set_weight(self, weight: int) -> None:
        await asyncio.to_thread(set_weight, self.layout, self.service, weight)

    async def promote(self) -> None:
        await asyncio.to_thread(promote, self.layout, self.service)

    async def rollback(self) -> None:
        await asyncio.to_thread(rollback, self.layout, self.service)


def analyze(layout: Layout, service: str, overrides: dict[str, Any]) -> Outcome:
    """The cluster's analysis (values' canary.analysis, `overrides` on top) on devstack."""
    workload = _workload(layout, service)
    if workload.canary is None:
        raise DevstackError(f"{service} has no canary (make canary SERVICE={service})")
    plan = Plan.from_values(service, {**workload.canary.analysis, **overrides})
    say(
        f"analysing the canary of {service}: steps {', '.join(map(str, plan.steps))} %,"
        f" {plan.step_seconds:.0f} s each, judged every {plan.interval_seconds:.0f} s"
    )
    started = time.monotonic()
    outcome = asyncio.run(
        run(plan, layout.prometheus_url, DevstackTraffic(layout, service), report=say)
    )
    verb = "promoted" if outcome.decision is Decision.PROMOTED else "rolled back"
    say(
        f"{service}: decided in {outcome.seconds:.0f} s, {verb} "
        f"{time.monotonic() - started - outcome.seconds:.0f} s later"
    )
    return outcome

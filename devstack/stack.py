"""What devstack does: up, down, status, logs, run.

`up` starts PostgreSQL, Redis (when a service uses it), nginx (ingress and Services),
Prometheus and every replica under supervisord, runs migrations and demo data, waits
for every readiness probe and prints the URLs. Running it again is harmless: configs are
regenerated and only what changed restarts. `down` stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from supervisor.xmlrpc import SupervisorTransport

from services.kit.auth import write_keypair
from services.kit.impersonation import write_credential

from . import canary, monitoring, postgres, render
from .layout import Layout, Replica
from .topology import REPO, Workload, databases, docs_path, ingress_target, workloads


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


class DevstackError(RuntimeError):
    pass


# ---------------------------------------------------------------- supervisord


def supervisorctl(
    layout: Layout, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [render.venv_bin("supervisorctl"), "-c", str(layout.supervisor_conf), *args],
        capture_output=True,
        text=True,
        check=check,
    )


@contextlib.contextmanager
def _rpc(layout: Layout) -> Iterator[Any]:
    """supervisord's XML-RPC interface, over its socket (closed after use)."""
    transport = SupervisorTransport(None, None, f"unix://{layout.supervisor_socket}")
    try:
        yield xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor
    finally:
        transport.close()


def start_programs(layout: Layout, names: list[str]) -> None:
    """Start programs all at once (supervisorctl starts one after the other, waiting for
    each); readiness is for the caller to wait for."""
    with _rpc(layout) as rpc:
        for name in names:
            with contextlib.suppress(xmlrpc.client.Fault):  # already running
                rpc.startProcess(name, False)


def stop_programs(layout: Layout, names: list[str], *, patience: float = 90) -> None:
    """Stop programs all at once (supervisorctl stops one after the other): each is sent
    its stop signal, then all are waited for."""
    with _rpc(layout) as rpc:
        for name in names:
            with contextlib.suppress(xmlrpc.client.Fault):  # not running, or unknown
                rpc.stopProcess(name, False)  # signal, do not wait
        deadline = time.monotonic() + patience
        waiting = set(names)
        while waiting:
            states = {p["name"]: p["statename"] for p in rpc.getAllProcessInfo()}
            waiting = {n for n in waiting if states.get(n) in ("RUNNING", "STARTING", "STOPPING")}
            if waiting and time.monotonic() > deadline:
                raise DevstackError(
                    f"{', '.join(sorted(waiting))} did not stop in {patience:.0f} s"
                )
            time.sleep(0.2)


def supervisord_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.supervisor_pidfile.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


INFRASTRUCTURE = frozenset({"postgres", "redis", "nginx", "prometheus", *monitoring.EXPORTER_NAMES})


def program(name: str) -> str:
    """supervisord's name for a program: each replica is a program of its own."""
    return name


def program_pid(layout: Layout, name: str) -> int | None:
    out = supervisorctl(layout, "pid", program(name), check=False).stdout.strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


# ---------------------------------------------------------------- up


def load_secrets(layout: Layout, services: list[Workload]) -> dict[str, str]:
    """One password per database, generated once and kept in the run directory."""
    path = layout.secrets_file
    secrets = json.loads(path.read_text()) if path.exists() else {}
    for database in databases(services):
        if database not in secrets:
            secrets[database] = postgres.new_password()
    path.write_text(json.dumps(secrets, indent=2))
    path.chmod(0o600)
    return secrets


def ensure_auth_keys(layout: Layout) -> None:
    """The Ed25519 keypair of the bearer tokens, made once and kept (like the passwords):
    private.pem readable by its owner only, given to the services with `auth: sign`;
    public.pem to every service with `auth: verify` (render.replica_env)."""
    private, public = layout.auth_dir / "private.pem", layout.auth_dir / "public.pem"
    if private.exists() and public.exists():
        return
    write_keypair(layout.auth_dir)
    layout.auth_dir.chmod(0o700)
    say(f"generated the token keypair in {layout.auth_dir}")


def ensure_impersonation_credential(layout: Layout) -> None:
    """The credential with which socialcompat gets users' tokens, made once and kept,
    readable by its owner only; given to the services with `impersonation` set."""
    path = layout.impersonation_credential
    if path.exists():
        return
    write_credential(path)
    path.parent.chmod(0o700)
    say(f"generated the impersonation credential in {path}")


def prepare_dirs(layout: Layout) -> None:
    for sub in ("logs", "nginx/tmp", "redis", "prometheus-data", "metrics", "rules"):
        (layout.run_dir / sub).mkdir(parents=True, exist_ok=True)
    postgres.prepare_socket_dir(layout.socket_dir)


def wait_http(url: str, *, timeout: float, what: str, any_answer: bool = False) -> None:
    """Until `url` answers 200 (or anything at all, with any_answer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200 or any_answer:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DevstackError(f"{what} not ready at {url} after {timeout:.0f} s")
        time.sleep(0.2)


def services_of(layout: Layout) -> list[Workload]:
    """The workloads of this devstack: values.yaml with its canaries (devstack/canary.py)."""
    return workloads(canary.values(layout))


def write_configs(layout: Layout, services: list[Workload]) -> None:
    """supervisord's, nginx's and Prometheus' configuration (and the monitoring files)."""
    data_dir = postgres.data_dir_for(layout.run_dir)
    secrets = load_secrets(layout, services)
    server = postgres.Server(layout.postgres_port, layout.socket_dir)
    dsns = {name: server.dsn(name, password) for name, password in secrets.items()}
    monitoring.write(layout, services)
    layout.supervisor_conf.write_text(render.supervisord_conf(layout, services, dsns, data_dir))
    (layout.run_dir / "nginx" / "nginx.conf").write_text(render.nginx_conf(layout, services))
    (layout.run_dir / "prometheus.yml").write_text(render.prometheus_yml(layout, services))


def wait_ready(layout: Layout, replica: Replica) -> None:
    url = f"http://127.0.0.1:{replica.port}{replica.workload.probes['readiness']}"
    try:
        wait_http(url, timeout=layout.ready_timeout, what=replica.name)
    except DevstackError:
        log = layout.logs / f"{replica.name}.log"
        tail = log.read_text()[-3000:] if log.exists() else "(no log)"
        raise DevstackError(f"{replica.name} did not become ready; its log ends:\n{tail}") from None
    say(f"{replica.name} ready on 127.0.0.1:{replica.port}")


def up(layout: Layout) -> None:
    started = time.monotonic()
    services = services_of(layout)
    prepare_dirs(layout)
    data_dir = postgres.data_dir_for(layout.run_dir)
    if postgres.initdb(data_dir):
        say(f"initialised PostgreSQL in {data_dir}")
    secrets = load_secrets(layout, services)
    ensure_auth_keys(layout)
    ensure_impersonation_credential(layout)
    server = postgres.Server(layout.postgres_port, layout.socket_dir)
    write_configs(layout, services)

    if supervisord_pid(layout) is None:
        say("starting supervisord (PostgreSQL, Redis, nginx, Prometheus and its exporters)")
        subprocess.run(
            [render.venv_bin("supervisord"), "-c", str(layout.supervisor_conf)], check=True
        )
    else:
        say("supervisord already running: applying changed configuration")
        supervisorctl(layout, "reread")
        supervisorctl(layout, "update")
        supervisorctl(layout, "signal", "HUP", "nginx", check=False)
        supervisorctl(layout, "signal", "HUP", "prometheus", check=False)

    say(f"waiting for PostgreSQL on 127.0.0.1:{layout.postgres_port}")
    asyncio.run(postgres.wait_ready(server, patience=layout.ready_timeout))
    for database in databases(services):
        dsn = asyncio.run(postgres.ensure_database(server, database, secrets[database]))
        result = subprocess.run(
            [render.venv_bin("agora-migrate"), database, "--seed"],
            env={**os.environ, "DATABASE_URL": dsn},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise DevstackError(f"migrations of {database} failed:\n{result.stderr}")
        say(f"migrated {result.stdout.strip()}")

    say("starting services")
    replicas = layout.replicas(services)
    start_programs(layout, [r.name for r in replicas])
    for replica in replicas:
        wait_ready(layout, replica)
    wait_http(f"{layout.prometheus_url}/-/ready", timeout=layout.ready_timeout, what="Prometheus")
    if layout.traces_url:
        wait_http(f"{layout.traces_url}/api/traces", timeout=30, what="the trace receiver")
    wait_http(layout.ingress_url, timeout=30, what="the ingress", any_answer=True)
    print_urls(layout, services)
    say(f"up in {time.monotonic() - started:.1f} s")


def urls_block(layout: Layout, services: list[Workload]) -> str:
    """What `up` and `status` print: the ingress, Prometheus, each service's Service
    address and its Swagger UI: through the ingress when the ingress routes to it, at
    the Service otherwise (README shows this)."""
    urls = layout.service_urls(services)
    lines = [
        f"AGORA_URL (ingress)  {layout.ingress_url}",
        f"Prometheus           {layout.prometheus_url}",
        f"Dashboards           {monitoring.dashboard_url(layout)}  (one page per service)",
        f"Alerts               {layout.prometheus_url}/classic/alerts",
    ]
    if layout.traces_url:
        lines.append(f"Traces               {layout.traces_url}/api/traces  (docs/tracing.md)")
    elif layout.otlp_endpoint:
        lines.append(f"Traces exported to   {layout.otlp_endpoint}")
    for workload in services:
        routed = ingress_target(services, docs_path(workload.name)) is workload
        base = layout.ingress_url if routed else urls[workload.name]
        lines.append(
            f"{workload.name:<20} {urls[workload.name]}  (docs {base}{docs_path(workload.name)})"
        )
    logs = layout.logs.relative_to(REPO) if layout.logs.is_relative_to(REPO) else layout.logs
    lines.append(f"logs                 {logs}   (make logs)")
    return "\n".join(lines)


def print_urls(layout: Layout, services: list[Workload]) -> None:
    print()
    print("\n".join(f"  {line}" for line in urls_block(layout, services).splitlines()))
    print()


# ---------------------------------------------------------------- down, status, logs


def down(layout: Layout) -> None:
    pid = supervisord_pid(layout)
    if pid is None:
        say("devstack is not running")
        return
    say("stopping services, nginx, Prometheus, Redis and PostgreSQL")
    # The replicas together (supervisord would stop them one by one), then the rest.
    with contextlib.suppress(OSError, xmlrpc.client.Error, DevstackError):
        stop_programs(layout, [r.name for r in layout.replicas(services_of(layout))])
    os.kill(pid, signal.SIGTERM)  # supervisord stops every program, then itself
    deadline = time.monotonic() + 90
    while alive(pid):  # the pidfile goes a moment before the process does
        if time.monotonic() > deadline:
            raise DevstackError(f"supervisord (pid {pid}) did not stop within 90 s")
        time.sleep(0.2)
    for pid, cmdline in leftovers(layout):
        say(f"stopping leftover process {pid}: {cmdline[:100]}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    say("stopped")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def leftovers(layout: Layout) -> list[tuple[int, str]]:
    """Processes still pointing into this devstack's directories (none, normally)."""
    marks = (str(layout.run_dir), str(layout.socket_dir))
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in cmdline for mark in marks):
            found.append((int(proc.name), cmdline))
    return found


def status(layout: Layout) -> int:
    if supervisord_pid(layout) is None:
        say("devstack is not running (make up)")
        return 1
    print(supervisorctl(layout, "status", check=False).stdout)
    for replica in layout.replicas(services_of(layout)):
        url = f"http://127.0.0.1:{replica.port}{replica.workload.probes['readiness']}"
        try:
            answer = httpx.get(url, timeout=2).text
        except httpx.HTTPError as error:
            answer = f"unreachable: {error}"
        print(f"  {replica.name:<16} {answer}")
    print_targets(layout)
    print_urls(layout, services_of(layout))
    return 0


def print_targets(layout: Layout) -> None:
    """What Prometheus scrapes (replicas and exporters) and whether each answers."""
    try:
        answer = httpx.get(f"{layout.prometheus_url}/api/v1/targets", timeout=2).json()
    except (httpx.HTTPError, ValueError) as error:
        print(f"\n  Prometheus unreachable: {error}")
        return
    print(f"\n  Prometheus targets ({monitoring.dashboard_url(layout)}):")
    targets = sorted(
        answer["data"]["activeTargets"], key=lambda t: (t["labels"]["job"], t["scrapeUrl"])
    )
    for target in targets:
        name = target["labels"].get("pod") or target["labels"]["job"]
        error = f"  {target['lastError']}" if target.get("lastError") else ""
        print(f"  {name:<18} {target['health']:<8} {target['scrapeUrl']}{error}")


def log_names(layout: Layout, services: list[Workload]) -> list[str]:
    """What `logs NAME` takes: a service, one of its replicas, or a server devstack runs."""
    replicas = [replica.name for replica in layout.replicas(services)]
    return [w.name for w in services] + replicas + sorted(INFRASTRUCTURE) + ["supervisord"]


def logs(layout: Layout, name: str | None, follow: bool) -> None:
    services = services_of(layout)
    if name and name not in log_names(layout, services):
        known = ", ".join([w.name for w in services] + sorted(INFRASTRUCTURE))
        raise DevstackError(f"no service or server named {name!r}; known: {known}")
    files = sorted(layout.logs.glob(f"{name}*.log" if name else "*.log"))
    if not files:
        raise DevstackError(f"no logs under {layout.logs}")
    command = ["tail", "-n", "50", *(["-F"] if follow else []), *map(str, files)]
    os.execvp("tail", command)


def wipe(layout: Layout) -> None:
    """Forget all state (databases included) of a stopped devstack."""
    if supervisord_pid(layout) is not None:
        raise DevstackError(f"devstack in {layout.run_dir} is running; `down` it first")
    for path in (layout.run_dir, postgres.data_dir_for(layout.run_dir)):
        if path.exists():
            say(f"removing {path}")
            shutil.rmtree(path)


def run(layout: Layout, command: list[str], *, fresh: bool) -> int:
    """Up, run a command against it (AGORA_URL set), down again whatever happened."""
    if fresh:
        wipe(layout)
    try:
        up(layout)
        env = {
            **os.environ,
            "AGORA_URL": layout.ingress_url,
            "PROMETHEUS_URL": layout.prometheus_url,
            "AGORA_RUN_DIR": str(layout.run_dir),
        }
        if layout.traces_url:
            env["TRACES_URL"] = layout.traces_url
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        down(layout)

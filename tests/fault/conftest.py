"""Fault tests: traffic through the ingress while devstack's processes are disturbed.

They need the devstack that `make integration` started (AGORA_RUN_DIR names it) to
signal, stop and start its programs through supervisord.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import postgres
from devstack.layout import Layout
from devstack.stack import program, program_pid, supervisorctl
from devstack.topology import workloads
from tests.conftest import answers_ready, wait_until


@dataclass
class Stack:
    layout: Layout

    def pid(self, name: str) -> int | None:
        return program_pid(self.layout, name)

    def state(self, name: str) -> str:
        out = supervisorctl(self.layout, "status", program(name), check=False).stdout.split()
        return out[1] if len(out) > 1 else "UNKNOWN"

    def stop(self, name: str) -> None:
        supervisorctl(self.layout, "stop", program(name))

    def start(self, name: str) -> None:
        supervisorctl(self.layout, "start", program(name), check=False)

    def start_ready(self, names: list[str]) -> None:
        """Start the replicas, then wait until each runs and answers its readiness."""
        for name in names:
            self.start(name)
        for name in names:
            self.wait_running(name)
            self.wait_ready(self.port(name))

    def wait_running(
        self, name: str, *, other_than: int | None = None, patience: float = 60
    ) -> int:
        """Wait until the program runs (with a new pid, if other_than is given)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            pid = self.pid(name)
            if self.state(name) == "RUNNING" and pid and pid != other_than:
                return pid
            time.sleep(0.2)
        raise AssertionError(f"{name} not running again within {patience} s")

    def crash(self, name: str) -> int:
        """SIGKILL a program's whole process group (a gunicorn master and its workers,
        as a node failure would); supervisord starts it again. Returns the old pid."""
        pid = self.pid(name)
        assert pid, f"{name} is not running"
        os.killpg(pid, signal.SIGKILL)
        return pid

    def port(self, name: str) -> int:
        """The 127.0.0.1 port of a replica, e.g. orders-0."""
        return next(r.port for r in self.layout.replicas(workloads()) if r.name == name)

    def dsn(self, database: str) -> str:
        """A service's own database, with the password devstack generated for it."""
        secrets = json.loads(self.layout.secrets_file.read_text())
        server = postgres.Server(self.layout.postgres_port, self.layout.socket_dir)
        return server.dsn(database, secrets[database])

    def log(self, name: str) -> str:
        path = self.layout.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, port: int, patience: float = 60) -> None:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers_ready(url), patience, f"{url} not ready")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    if not os.environ.get("AGORA_RUN_DIR"):
        pytest.exit("AGORA_RUN_DIR is not set: run these through `make integration`", returncode=2)
    layout = Layout.from_env()
    if not Path(layout.supervisor_conf).exists():
        pytest.exit(f"no devstack in {layout.run_dir}", returncode=2)
    yield Stack(layout)

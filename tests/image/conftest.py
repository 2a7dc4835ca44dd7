"""A real Docker engine, the image built from the Dockerfile, and the servers its
containers need (PostgreSQL from tests/conftest.py, Redis here), all on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.topology import REPO
from tests.conftest import free_port, wait_until

# Start-to-ready times and the image size, reported at the end of the run.
MEASUREMENTS: dict[str, str] = {}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def engine_answers() -> bool:
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """The machine's Docker engine; started here (and stopped after) when it is not up."""
    if engine_answers():
        yield
        return
    if not shutil.which("dockerd") or os.geteuid() != 0:
        raise RuntimeError("no Docker engine: install docker.io (make setup does, as root)")
    log = Path(tempfile.mkdtemp(prefix="agora-dockerd-")) / "dockerd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["dockerd"], stdout=output, stderr=output, start_new_session=True
        )
    try:
        wait_until(engine_answers, 60, f"dockerd did not answer (log: {log})")
        yield
    finally:
        process.terminate()
        process.wait(60)
        shutil.rmtree(log.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def image(docker_engine: None) -> str:
    """agora:test, from BASE_IMAGE when set, else from the debootstrap base image."""
    env = dict(os.environ)
    if not env.get("BASE_IMAGE"):
        base = subprocess.run(
            [REPO / "tools" / "base-image.sh"], capture_output=True, text=True, check=False
        )
        assert base.returncode == 0, base.stderr
        env["BASE_IMAGE"] = base.stdout.strip()
    built = subprocess.run(
        [REPO / "tools" / "build-image.sh", "agora:test"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    name = built.stdout.strip()
    size = int(docker("image", "inspect", "--format", "{{.Size}}", name).stdout)
    MEASUREMENTS["image size"] = f"{size / 1e6:.0f} MB (base {env['BASE_IMAGE']})"
    return name


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free 127.0.0.1 port."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="agora-redis-") as data:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port)]
        command += ["--dir", data, "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(30)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("agora image")
        for what, value in MEASUREMENTS.items():
            terminalreporter.write_line(f"{what:<28} {value}")

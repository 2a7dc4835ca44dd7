"""Shared by the suites: private test servers on free 127.0.0.1 ports (PostgreSQL and
Redis, for unit tests), and the client of the system under test through its ingress,
AGORA_URL (integration and fault tests)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from devstack import postgres
from devstack.layout import Layout
from devstack.topology import Workload, ingress_target, openapi_path


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:.0f} s")
        time.sleep(interval)


def answers_ready(base_url: str) -> bool:
    """True when the server at base_url answers its readiness probe with 200."""
    try:
        return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    with postgres.temporary_server(free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def agora_url() -> str:
    url = os.environ.get("AGORA_URL")
    if not url:
        pytest.exit("AGORA_URL is not set: run these through `make integration`", returncode=2)
    return url.rstrip("/")


@pytest.fixture(scope="session")
def agora(agora_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agora_url, timeout=15) as client:
        yield client


def api_base(workload: Workload, services: list[Workload], agora_url: str) -> str | None:
    """Where a service's document and operations answer: the ingress when it routes the
    document to the service, as a user reaches it; else (factsource, say) its devstack
    Service address when the tests run on devstack (AGORA_RUN_DIR); else None."""
    if ingress_target(services, openapi_path(workload.name)) is workload:
        return agora_url
    if os.environ.get("AGORA_RUN_DIR"):
        return Layout.from_env().service_urls(services)[workload.name]
    return None


@pytest.fixture(scope="session")
def prometheus() -> Iterator[httpx.Client]:
    """The Prometheus of the system under test (PROMETHEUS_URL, set by `make integration`)."""
    url = os.environ.get("PROMETHEUS_URL")
    if not url:
        pytest.exit("PROMETHEUS_URL is not set: run these through `make integration`", returncode=2)
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client


def prometheus_query(prometheus: httpx.Client, expression: str) -> list[dict]:
    """An instant query's result: [{"metric": {...}, "value": [time, "value"]}, ...]."""
    answer = prometheus.get("/api/v1/query", params={"query": expression}).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.fixture
def unique() -> str:
    """A suffix that makes names from this test distinct from every other run's."""
    return uuid.uuid4().hex[:10]


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_process(port: int, workdir: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server without persistence on 127.0.0.1:port, until the block ends."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make setup`")
    workdir = workdir or tempfile.mkdtemp(prefix="agora-redis-")
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", workdir]
    command += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _redis_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A throwaway redis-server without persistence; its URL."""
    port = free_port()
    with redis_process(port):
        yield f"redis://127.0.0.1:{port}/0"

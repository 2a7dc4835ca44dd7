"""Every service's container, from the one image, as Kubernetes runs it: host network on
a free 127.0.0.1 port, read-only root filesystem with tmpfs only at /tmp and the metrics
directory, the image's non-root user; probes answer, `docker stop` ends it with 0."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import postgres
from devstack.topology import Workload, url_variable, workloads
from services.kit.auth import write_keypair
from services.kit.impersonation import write_credential
from tests.conftest import answers_ready, free_port, wait_until

from .conftest import MEASUREMENTS, docker

METRICS_DIR = "/run/agora/metrics"  # the Dockerfile's PROMETHEUS_MULTIPROC_DIR
AUTH_DIR = "/etc/agora/auth"  # where the token keys are mounted, read-only
UNREACHABLE = "http://127.0.0.1:9"  # upstreams: readiness never depends on them
# The first test also builds the base image (debootstrap) and the image.
pytestmark = pytest.mark.timeout(900)


def host_pid(container: str) -> int:
    return int(docker("inspect", "--format", "{{.State.Pid}}", container).stdout)


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as status:
        return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)


@pytest.fixture(scope="session")
def auth_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token keypair the image's user can read through a read-only bind mount."""
    directory = tmp_path_factory.mktemp("auth")
    write_keypair(directory)
    write_credential(directory / "credential")  # socialcompat's, shared with users
    for path in (directory / "private.pem", directory / "public.pem", directory / "credential"):
        path.chmod(0o644)  # a throwaway key: owned by root here, read by uid 10001 there
    directory.chmod(0o755)
    return directory


def auth_mount(workload: Workload, directory: Path) -> list[str]:
    if workload.auth == "none" and workload.impersonation == "none":
        return []
    return ["--volume", f"{directory}:{AUTH_DIR}:ro"]


@pytest.fixture
def container_env(
    request: pytest.FixtureRequest, postgres_server: postgres.Server
) -> dict[str, str]:
    workload: Workload = request.param
    env = {
        **workload.env,
        "SERVICE_NAME": workload.name,
        "BIND_HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": str(workload.workers),
    }
    if workload.database:
        password = postgres.new_password()
        env["DATABASE_URL"] = asyncio.run(
            postgres.ensure_database(postgres_server, workload.database, password)
        )
    if workload.redis:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    if workload.auth != "none":
        env["AUTH_PUBLIC_KEY_FILE"] = f"{AUTH_DIR}/public.pem"
    if workload.auth == "sign":
        env["AUTH_PRIVATE_KEY_FILE"] = f"{AUTH_DIR}/private.pem"
    if workload.impersonation != "none":
        env["IMPERSONATION_CREDENTIAL_FILE"] = f"{AUTH_DIR}/credential"
    env.update({url_variable(upstream): UNREACHABLE for upstream in workload.upstreams})
    return env


@pytest.fixture
def container(
    request: pytest.FixtureRequest,
    image: str,
    container_env: dict[str, str],
    auth_keys_dir: Path,
) -> Iterator[tuple[str, str, Workload]]:
    """The running container's name and base URL; removed afterwards whatever happened."""
    workload: Workload = request.param
    name = f"agora-test-{workload.name}-{os.getpid()}"
    url = f"http://127.0.0.1:{container_env['PORT']}"
    env_args = [arg for key, value in container_env.items() for arg in ("--env", f"{key}={value}")]
    started = time.monotonic()
    docker(
        "run", "--detach", "--name", name, "--network", "host",
        "--read-only", "--tmpfs", "/tmp", "--tmpfs", METRICS_DIR,
        *auth_mount(workload, auth_keys_dir),
        *env_args, image, *workload.command,
    )  # fmt: skip
    try:
        try:
            wait_until(lambda: answers_ready(url), 30, f"{workload.name} never became ready")
        except TimeoutError as error:
            raise AssertionError(f"{error}; its log ends:\n{container_log(name)}") from None
        MEASUREMENTS[f"start to ready: {workload.name}"] = f"{time.monotonic() - started:.2f} s"
        yield name, url, workload
    finally:
        docker("rm", "--force", name, check=False)


def container_log(name: str) -> str:
    logs = docker("logs", name, check=False)
    return (logs.stdout + logs.stderr)[-3000:]


SERVICES = workloads()
by_service = pytest.mark.parametrize(
    ("container_env", "container"),
    [(w, w) for w in SERVICES],
    ids=[w.name for w in SERVICES],
    indirect=True,
)


@by_service
def test_the_container_serves_its_probes_and_metrics(
    container: tuple[str, str, Workload],
) -> None:
    _, url, workload = container
    assert httpx.get(f"{url}{workload.probes['liveness']}").json() == {"status": "ok"}
    readiness = httpx.get(f"{url}{workload.probes['readiness']}").json()
    assert readiness["status"] == "ready"
    if workload.postgres:
        assert readiness["dependencies"]["postgres"] == "ok"
    metrics = httpx.get(f"{url}/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text


@by_service
def test_the_container_runs_as_the_unprivileged_user_on_a_read_only_root(
    container: tuple[str, str, Workload],
) -> None:
    name, _, workload = container
    status = proc_status(host_pid(name))
    real_uid = int(status["Uid"].split()[0])
    assert real_uid >= 10000
    assert status["NSpid"].split()[-1] == "1"  # gunicorn's master is PID 1: it gets SIGTERM
    with open(f"/proc/{host_pid(name)}/cmdline", "rb") as cmdline:
        _python, script, *args = cmdline.read().decode().rstrip("\0").split("\0")
    assert [os.path.basename(script), *args] == workload.command  # exec form: no shell
    assert docker("exec", name, "touch", "/opt/agora/x", check=False).returncode != 0
    assert docker("exec", name, "touch", "/tmp/x").returncode == 0
    assert docker("exec", name, "ls", METRICS_DIR).stdout.strip()  # worker sample files


@by_service
def test_docker_stop_ends_the_container_cleanly_within_the_grace_period(
    container: tuple[str, str, Workload],
) -> None:
    name, url, workload = container
    grace = math.ceil(float(workload.env["SHUTDOWN_GRACE"]))
    started = time.monotonic()
    docker("stop", "--time", str(grace + 10), name)
    elapsed = time.monotonic() - started
    MEASUREMENTS[f"docker stop: {workload.name}"] = f"{elapsed:.2f} s"
    assert docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    # gunicorn exits 0 even when it had to kill a worker at the end of its graceful timeout
    assert elapsed < grace, container_log(name)
    assert not answers_ready(url)


def test_the_image_carries_no_build_tools(image: str) -> None:
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert int(user.split(":")[0]) >= 10000
    script = (
        "for tool in gcc cc make pip pip3; do command -v $tool; done; ls /opt/agora/bin;"
        " find / -xdev -name .cache 2>/dev/null; true"
    )
    probe = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script)
    found = {os.path.basename(line) for line in probe.stdout.split()}
    assert "agora-serve" in found  # the probe looked in the right place
    assert not {"gcc", "cc", "make", "pip", "pip3", ".cache"} & found

"""The kit under gunicorn, as it runs in a pod: several workers, metrics, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import answers_ready, free_port, wait_until

SERVE = [sys.executable, "-m", "services.kit.serve", "tests.unit.kit.sample_app"]


class Served:
    def __init__(self, process: subprocess.Popen[str], port: int, metrics_dir: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_dir = metrics_dir

    def stop(self) -> str:
        """Kill it if it still runs; return everything it printed."""
        if self.process.poll() is None:
            self.process.kill()
        output, _ = self.process.communicate()
        return output

    def wait_ready(self, patience: float = 20) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, self.stop()
            return answers_ready(self.url)

        wait_until(ready, patience, "not ready", interval=0.1)

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics").text
        wanted = {"service": "sample", **labels}
        total = 0.0
        for line in text.splitlines():
            match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
            if not match or match.group(1) != name:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            if all(found.get(k) == v for k, v in wanted.items()):
                total += float(match.group(3))
        return total


def serve(tmp_path: Path, **env: str) -> Served:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    environment = {
        **os.environ,
        "SERVICE_NAME": "sample",
        "BIND_HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_FLUSH_SECONDS": "0.2",
        "DRAIN_SECONDS": "0.5",
        "SHUTDOWN_GRACE": "10",
        **env,
    }
    process = subprocess.Popen(
        SERVE, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return Served(process, port, metrics_dir)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_999999.db").write_bytes(b"stale")
    server = serve(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def eventually(check, patience: float = 5.0):
    deadline = time.monotonic() + patience
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_metrics_directory_is_wiped_at_start(served):
    assert not (served.metrics_dir / "counter_999999.db").exists()


def test_requests_on_every_worker_are_counted_once(served):
    pids = set()
    for _ in range(120):
        with httpx.Client() as client:  # a new connection each time: spread over workers
            pids.add(client.get(f"{served.url}/api/v1/sample/hello").json()["pid"])
    assert len(pids) == 2, "both workers should have answered"
    labels = {"route": "/api/v1/sample/hello", "status": "200", "method": "GET"}
    assert eventually(lambda: served.metric("http_requests_total", **labels) == 120)
    assert served.metric("http_request_duration_seconds_count", **labels) == 120
    # scraping again changes nothing: no double counting across workers
    assert served.metric("http_requests_total", **labels) == 120


def test_process_metrics_cover_every_worker(served):
    httpx.get(f"{served.url}/api/v1/sample/hello")
    assert eventually(lambda: served.metric("agora_worker_resident_memory_bytes") > 2 * 20e6)
    assert served.metric("agora_worker_cpu_seconds_total") > 0


def test_open_connections_and_body_bytes_are_counted(served):
    clients = [httpx.Client(base_url=served.url) for _ in range(3)]
    try:
        sent = b'{"text": "hello", "count": 3}'
        json = {"Content-Type": "application/json"}
        answers = [c.post("/api/v1/sample/echo", content=sent, headers=json) for c in clients]
        assert all(a.status_code == 201 for a in answers)
        # three kept-alive connections, plus the one each scrape opens
        assert eventually(lambda: served.metric("http_connections_open") >= 3, patience=2)
        received = sum(len(a.content) for a in answers)
        # each worker adds its bytes at its next flush (a scrape, or its periodic one)
        assert eventually(
            lambda: served.metric("http_request_body_bytes_total") == 3 * len(sent), patience=3
        ), served.metric("http_request_body_bytes_total")
        assert eventually(
            lambda: served.metric("http_response_body_bytes_total") >= received, patience=3
        )
    finally:
        for client in clients:
            client.close()
    assert eventually(lambda: served.metric("http_connections_open") <= 1, patience=2)


def test_in_flight_is_summed_over_live_workers(served):
    threads = [
        threading.Thread(
            target=httpx.get,
            args=(f"{served.url}/api/v1/sample/slow",),
            kwargs={"params": {"seconds": "1.5"}, "timeout": 10},
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    # the scrape itself is in flight too
    assert eventually(lambda: served.metric("http_requests_in_flight") == 4, patience=1.2)
    for thread in threads:
        thread.join()


def test_sigterm_drains_finishes_in_flight_and_exits_zero(served):
    result: dict[str, object] = {}

    def slow_call() -> None:
        response = httpx.get(
            f"{served.url}/api/v1/sample/slow", params={"seconds": "1.5"}, timeout=10
        )
        result["status"] = response.status_code

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(0.3)  # the slow request is in flight
    served.process.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    # During the drain period: not ready, but still answering.
    assert httpx.get(f"{served.url}/readyz").status_code == 503
    assert httpx.get(f"{served.url}/api/v1/sample/hello").status_code == 200
    assert served.process.wait(timeout=15) == 0
    caller.join()
    assert result["status"] == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.url}/healthz")


def test_bad_configuration_stops_before_serving(tmp_path):
    server = serve(tmp_path, WEB_CONCURRENCY="lots")
    assert server.process.wait(timeout=20) == 2
    assert "configuration error: WEB_CONCURRENCY" in server.stop()


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.6, 1.0])
def test_sigterm_while_starting_still_stops_promptly(tmp_path, delay):
    # A SIGTERM that arrives before gunicorn (or a worker) has its handlers must not be
    # lost: otherwise the master waits the whole graceful timeout (30 s here) and then
    # kills. Before Python has even started our code the default action ends it (-15).
    server = serve(tmp_path, SHUTDOWN_GRACE="30")
    time.sleep(delay)
    server.process.send_signal(signal.SIGTERM)
    try:
        assert server.process.wait(timeout=10) in (0, -signal.SIGTERM)
    finally:
        server.stop()


def test_missing_dependency_setting_stops_instead_of_restarting(tmp_path):
    catalog = subprocess.Popen(
        [sys.executable, "-m", "services.kit.serve", "catalog"],
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        | {
            "PORT": str(free_port()),
            "BIND_HOST": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "catalog-metrics"),
            "WEB_CONCURRENCY": "4",  # several workers failing at once must still halt with 3
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = catalog.communicate(timeout=20)
    assert catalog.returncode == 3  # gunicorn: worker failed to boot, master halts
    assert "DATABASE_URL" in output

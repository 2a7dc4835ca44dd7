"""The crawler: URLs checked per second with one and two worker replicas against the
ideal, the time from submit to the first result, and the task status API's latency.

The site is tests/crawlsite.py in its own processes on 127.0.0.1 (a free port), answering
every URL after 50 ms with mixed statuses (200, 204, 404, 410; none retried); no URL of
this benchmark names anything else. One case submits 10,000 URLs (10 tasks of 1,000, the
most a task takes) and times them until every task is ready. The ideal is the workers'
concurrency over the latency: replicas x CRAWLER_WORKER_CONCURRENCY / 50 ms (bench/
values.yaml lifts the per-host limit to the same, the site being one host). The one- and
two-replica cases alternate (crawler-worker-1 is stopped through supervisord for the
first), so both see the same machine.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from devstack.layout import Layout
from devstack.stack import program, supervisorctl
from devstack.topology import REPO, workloads
from tests.conftest import free_port
from tests.crawlsite import loopback_only

from .common import BenchEnv, Result, interleaved, local_only, table, wrk

LATENCY_MS = 50
TASKS, PER_TASK = 10, 1000
ROUNDS = 2
FIRST_RESULT_SAMPLES = 15
TASKS_PATH = "/api/v1/crawler/tasks"


@contextlib.contextmanager
def local_site() -> Iterator[str]:
    """The site in two processes (SO_REUSEPORT) of its own: its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "tests.crawlsite", "--port", str(port)]
    command += ["--latency-ms", str(LATENCY_MS), "--processes", "2"]
    site = subprocess.Popen(command, cwd=REPO, start_new_session=True)
    base = loopback_only(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ok", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or site.poll() is not None:
                raise RuntimeError("the benchmark's local site did not start")
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(site.pid, 15)
        site.wait(10)


def submit(client: httpx.Client, urls: list[str]) -> str:
    for url in urls:
        loopback_only(url)
    response = client.post(TASKS_PATH, json={"urls": urls})
    response.raise_for_status()
    return response.headers["Location"]


def wait_ready(client: httpx.Client, locations: list[str], patience: float = 600) -> None:
    ids = {location.rsplit("/", 1)[1] for location in locations}
    deadline = time.monotonic() + patience
    while True:
        listed = client.get(TASKS_PATH, params={"status": "ready", "limit": 100}).json()
        if ids <= {item["task_id"] for item in listed["items"]}:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark's tasks did not finish")
        time.sleep(0.05)


class Workers:
    """crawler-worker replicas switched on and off through devstack's supervisord."""

    def __init__(self) -> None:
        self.layout = Layout.from_env()
        self.replicas = [
            r for r in self.layout.replicas(workloads()) if r.workload.name == "crawler-worker"
        ]

    def use(self, count: int) -> None:
        for index, replica in enumerate(self.replicas):
            verb = "start" if index < count else "stop"
            supervisorctl(self.layout, verb, program(replica.name), check=False)
        for replica in self.replicas[:count]:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{replica.port}/readyz", timeout=1).is_success:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{replica.name} did not become ready")
                time.sleep(0.1)


def throughput(
    client: httpx.Client, workers: Workers, base: str, replicas: int, tag: str
) -> tuple[float, float]:
    """(URLs per second, seconds to the first result) for 10,000 URLs on `replicas`."""
    workers.use(replicas)
    urls = [[f"{base}/n/{t * PER_TASK + i}?r={tag}" for i in range(PER_TASK)] for t in range(TASKS)]
    started = time.perf_counter()
    locations = [submit(client, batch) for batch in urls]
    first = None
    while first is None:  # the newest summaries carry progress; results are not fetched
        listed = client.get(TASKS_PATH, params={"limit": TASKS}).json()["items"]
        if any(item["progress"]["done"] + item["progress"]["failed"] for item in listed):
            first = time.perf_counter() - started
        else:
            time.sleep(0.005)
    wait_ready(client, locations)
    return TASKS * PER_TASK / (time.perf_counter() - started), first


def scaling_table(client: httpx.Client, base: str) -> str:
    services = {w.name: w for w in workloads()}
    worker = services["crawler-worker"]
    concurrency = int(worker.env["CRAWLER_WORKER_CONCURRENCY"]) * worker.workers
    workers = Workers()
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    try:
        for round_ in range(ROUNDS):
            for replicas in (1, 2):
                runs[replicas].append(
                    throughput(client, workers, base, replicas, f"{round_}-{replicas}")
                )
    finally:
        workers.use(len(workers.replicas))
    lines = [
        f"10,000 URLs (10 tasks x 1,000) at {LATENCY_MS} ms each; per replica"
        f" {worker.workers} worker x CRAWLER_WORKER_CONCURRENCY"
        f" {worker.env['CRAWLER_WORKER_CONCURRENCY']}; median of {ROUNDS} interleaved rounds.",
        "",
        "| worker replicas | URLs/s | ideal URLs/s | share of ideal | first result (s) | scaling |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    one = statistics.median(rate for rate, _ in runs[1])
    for replicas in (1, 2):
        rate = statistics.median(r for r, _ in runs[replicas])
        first = statistics.median(f for _, f in runs[replicas])
        ideal = replicas * concurrency / (LATENCY_MS / 1000)
        lines.append(
            f"| {replicas} | {rate:,.0f} | {ideal:,.0f} | {rate / ideal:.2f} | {first:.2f} |"
            f" {rate / one:.2f}x |"
        )
    return "\n".join(lines)


def first_result_table(client: httpx.Client, base: str) -> str:
    """A one-URL task on an idle crawler: submit, then its status every 5 ms."""
    samples = []
    for index in range(FIRST_RESULT_SAMPLES):
        started = time.perf_counter()
        location = submit(client, [f"{base}/n/5?first={index}-{time.time_ns()}"])
        while client.get(location).json()["progress"]["pending"]:
            time.sleep(0.005)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p90 = samples[int(len(samples) * 0.9) - 1]
    return (
        f"One-URL task, submit to its result, {FIRST_RESULT_SAMPLES} samples: median"
        f" {statistics.median(samples):.0f} ms, p90 {p90:.0f} ms, of which {LATENCY_MS} ms"
        " is the site's latency (the rest: the commit, the relay, the stream, the worker's"
        " task lookup and its batched result write)."
    )


def status_table(env: BenchEnv, client: httpx.Client, base: str) -> str:
    small = submit(client, [f"{base}/n/7?status=1"])
    large = submit(client, [f"{base}/n/{i}?status=1000" for i in range(1000)])
    wait_ready(client, [small, large])

    def case(name: str, path: str) -> tuple[str, object]:
        return (name, lambda: wrk(name, f"{env.agora_url}{path}", seconds=5, connections=8))

    results: list[Result] = interleaved(
        [
            case("GET a 1-URL task", small),
            case("GET a 1,000-URL task", large),
            case("GET the task list (20 summaries)", TASKS_PATH),
        ],
        rounds=3,
    )
    return (
        "wrk, 8 connections, 5 s x 3 interleaved rounds, finished tasks; ratio to the 1-URL"
        " task:\n\n" + table(results, baseline="GET a 1-URL task")
    )


def run(env: BenchEnv) -> str:
    local_only(env.agora_url)
    with local_site() as base, httpx.Client(base_url=env.agora_url, timeout=60) as client:
        submit(client, [f"{base}/ok"])  # warm the path
        sections = [
            "## Crawler",
            "### URLs per second, 1 and 2 crawler-worker replicas",
            scaling_table(client, base),
            "### Time to the first result",
            first_result_table(client, base),
            "### Task status API",
            status_table(env, client, base),
        ]
    return "\n\n".join(sections)

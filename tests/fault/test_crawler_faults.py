"""The crawler when its processes fail: a crawler-worker SIGKILLed mid-check, Redis
stopped while tasks are submitted. Nothing accepted is lost, nothing is checked into
two results. Only the local site this process serves on 127.0.0.1 is ever checked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.crawler_helpers import TASKS, Crawl, open_crawl

from .conftest import Stack


@pytest.fixture(scope="module")
def crawl(agora: httpx.Client) -> Iterator[Crawl]:
    with open_crawl(agora) as opened:
        yield opened


def wait_progress(crawl: Crawl, locations: list[str], at_least: int, patience: float) -> None:
    deadline = time.monotonic() + patience
    while True:
        done = [crawl.task(location)["progress"] for location in locations]
        if all(p["done"] + p["failed"] >= at_least for p in done):
            return
        assert time.monotonic() < deadline, f"no progress: {done}"
        time.sleep(0.1)


def test_a_worker_killed_mid_check_leaves_exactly_one_result_per_url(stack: Stack, crawl: Crawl):
    tag = uuid.uuid4().hex[:8]
    locations = [
        crawl.submitted([crawl.url(f"/slow?ms=150&t={tag}&k={k}&i={i}") for i in range(1000)])
        for k in range(2)
    ]
    wait_progress(crawl, locations, 50, patience=60)
    old = stack.crash("crawler-worker-0")  # master and worker, mid-check
    stack.wait_running("crawler-worker-0", other_than=old)

    tasks = [crawl.wait(location, patience=240) for location in locations]
    results = [result for task in tasks for result in task["result"]]
    assert len(results) == 2000
    assert len({result["url"] for result in results}) == 2000  # no URL twice
    assert all(result["checked_at"] is not None for result in results)
    assert all(result["status_code"] == 200 for result in results), [
        r for r in results if r["status_code"] != 200
    ][:5]
    for task in tasks:
        assert task["progress"] == {"total": 1000, "done": 1000, "failed": 0, "pending": 0}
    # ready once: its finish does not move however long the claimed URLs take
    finished = [task["finished_at"] for task in tasks]
    time.sleep(2)
    assert [crawl.task(location)["finished_at"] for location in locations] == finished
    # the URLs the dead worker held were requested again; none of them more than twice
    counts: dict[str, int] = {}
    for hit in crawl.site.site.hits:
        if tag in hit.path:
            counts[hit.path] = counts.get(hit.path, 0) + 1
    assert len(counts) == 2000 and max(counts.values()) <= 2
    assert 2 in counts.values()  # the kill did land mid-check: those were checked again


def test_tasks_submitted_while_redis_is_stopped_are_all_checked(stack: Stack, crawl: Crawl):
    tag = uuid.uuid4().hex[:8]
    stack.stop("redis")
    try:
        accepted = []
        for k in range(5):
            resp = crawl.submit([crawl.url(f"/ok?t={tag}&k={k}&i={i}") for i in range(20)])
            assert resp.status_code == 202, resp.text  # the API never needs Redis to accept
            accepted.append(resp.headers["Location"])
        time.sleep(2)
        for location in accepted:  # nothing can be checked while the work stream is away
            assert crawl.task(location)["progress"]["pending"] == 20
    finally:
        stack.start("redis")
    for location in accepted:
        task = crawl.wait(location, patience=120)
        assert task["progress"] == {"total": 20, "done": 20, "failed": 0, "pending": 0}
    listed = crawl.agora.get(TASKS, params={"status": "ready", "limit": 100}).json()
    assert {location.rsplit("/", 1)[1] for location in accepted} <= {
        item["task_id"] for item in listed["items"]
    }

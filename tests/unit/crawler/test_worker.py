"""crawler-worker end to end in one process: the API, one or two workers, the real
PostgreSQL and Redis, and the local site (inside the network jail, as every test here)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.crawler import store, worker
from services.crawler.app import create_app as create_api
from services.crawler.checker import CheckResult
from services.kit import streams
from tests.conftest import free_port, redis_process
from tests.crawlsite import Running
from tests.unit.conftest import truncate_all, until

from .test_api import crawler_settings, stream_length_at_least

STREAM = "crawler.urls"


def worker_settings(databases, redis_url, **overrides) -> worker.Settings:
    values = {
        "service_name": "crawler-worker",
        "database_url": databases["crawler"],
        "redis_url": redis_url,
        "crawler_allowed_networks": "127.0.0.0/8",
        "claim_idle_seconds": 0.5,
        "consumer_concurrency": 20,
        "crawler_worker_concurrency": 10,
        "crawler_per_host_concurrency": 10,
        "crawler_retries": 0,
        "crawler_backoff": 0.05,
        "crawler_connect_timeout": 1.0,
        "crawler_cancel_poll": 0.1,
    }
    return worker.Settings(**{**values, **overrides})


@dataclass
class Stack:
    api: object
    site: Running
    db: asyncpg.Connection
    start_worker: object

    async def submit(self, paths, **options) -> str:
        urls = [self.site.url(path) if path.startswith("/") else path for path in paths]
        body = {"urls": urls, **({"options": options} if options else {})}
        resp = await self.api.post("/api/v1/crawler/tasks", json=body)
        assert resp.status == 202, await resp.text()
        return resp.headers["Location"]

    async def task(self, location: str) -> dict:
        return await (await self.api.get(location)).json()

    async def wait(self, location: str, status: str = "ready", patience: float = 30) -> dict:
        async def reached() -> bool:
            return (await self.task(location))["status"] == status

        await until(reached, patience)
        return await self.task(location)


@pytest.fixture(autouse=True)
def distinct_consumers(monkeypatch):
    """Workers in one process would share a consumer name (host and pid): not here."""
    monkeypatch.setattr(streams, "consumer_name", lambda: f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def stack(aiohttp_client, databases, redis_url, site):
    await truncate_all(databases["crawler"])
    settings = crawler_settings(databases, redis_url, crawler_max_urls=1000)
    api = await aiohttp_client(create_api(settings))
    conn = await asyncpg.connect(databases["crawler"])

    async def start_worker(**overrides):
        settings = worker_settings(databases, redis_url, **overrides)
        return await aiohttp_client(worker.create_app(settings))

    yield Stack(api, site, conn, start_worker)
    await conn.close()


def sample(name: str, labels: dict | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_every_case_gets_its_result(stack):
    ready_before = sample("crawler_tasks_ready_total")
    await stack.start_worker()
    site = stack.site
    paths = [
        "/ok",
        "/status/404",
        "/redirect/2",
        "/status/500",
        "/slow?ms=3000",
        "/no-head",
        f"http://127.0.0.1:{site.refused_port}/",
        f"{site.tls_base}/ok",
        "http://10.0.0.1/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
    ]
    location = await stack.submit(paths, timeout=0.5)
    task = await stack.wait(location)
    by_url = {result["url"]: result for result in task["result"]}
    assert len(by_url) == len(paths)

    def result_of(path):
        return by_url[
            site.url(path)
            if path.startswith("/")
            else path.replace("::ffff:169.254.169.254", "::ffff:a9fe:a9fe")
        ]

    ok = result_of("/ok")
    assert ok["status_code"] == 200 and ok["error"] is None and ok["attempts"] == 1
    assert ok["checked_at"] is not None and ok["elapsed_ms"] > 0
    assert result_of("/status/404")["error"] == {"kind": "http", "detail": 404}
    chain = result_of("/redirect/2")
    assert chain["redirects"] == 2 and chain["final_url"] == site.url("/redirect/0")
    assert result_of("/status/500")["error"] == {"kind": "http", "detail": 500}
    assert result_of("/slow?ms=3000")["error"]["kind"] == "timeout"
    assert result_of("/no-head")["status_code"] == 200
    assert result_of(paths[6])["error"]["kind"] == "connect"
    assert result_of(paths[7])["error"]["kind"] == "ssl"
    assert result_of(paths[8])["error"]["kind"] == "blocked"
    assert result_of(paths[9])["error"]["kind"] == "blocked"
    assert task["progress"] == {"total": 10, "done": 3, "failed": 7, "pending": 0}
    assert task["started_at"] <= task["finished_at"]
    assert sample("crawler_tasks_ready_total") == ready_before + 1


async def test_two_workers_share_a_task_and_each_url_is_checked_once(stack):
    await stack.start_worker()
    await stack.start_worker()
    location = await stack.submit([f"/slow?ms=50&i={i}" for i in range(60)])
    task = await stack.wait(location)
    assert task["progress"]["done"] == 60
    assert stack.site.site.count("/slow") == 60  # nothing checked twice


async def test_urls_a_dead_worker_held_are_claimed_and_end_with_one_result(stack, redis):
    duplicates_before = sample("crawler_results_recorded_total", {"outcome": "duplicate"})
    location = await stack.submit([f"/ok?i={i}" for i in range(6)])
    task_id = uuid.UUID(location.rsplit("/", 1)[1])
    await until(lambda: stream_length_at_least(redis, 6))
    # "dead" takes every URL and dies: two after their results were recorded, but
    # before acknowledging them; the others mid-check.
    await redis.xgroup_create(STREAM, "crawler-worker", id="0", mkstream=True)
    await redis.xreadgroup("crawler-worker", "dead", {STREAM: ">"}, count=10)
    earlier = [store.Checked(task_id, p, CheckResult(status_code=299)) for p in (0, 1)]
    recorded, _, _ = await store.record_results(stack.db, earlier)
    assert len(recorded) == 2

    await stack.start_worker()
    task = await stack.wait(location)
    assert task["progress"] == {"total": 6, "done": 6, "failed": 0, "pending": 0}
    codes = [result["status_code"] for result in task["result"]]
    assert codes == [299, 299, 200, 200, 200, 200]  # the first result stands

    async def acknowledged() -> bool:  # in the consumer's round after the last result
        return (await redis.xpending(STREAM, "crawler-worker"))["pending"] == 0

    await until(acknowledged, patience=10)
    duplicates = sample("crawler_results_recorded_total", {"outcome": "duplicate"})
    assert duplicates - duplicates_before == 2


async def cancel_mid_task(stack, stop) -> None:
    await stack.start_worker(crawler_worker_concurrency=4, consumer_concurrency=8)
    location = await stack.submit([f"/slow?ms=700&i={i}" for i in range(40)])
    site = stack.site.site
    await until(lambda: site.count("/slow") >= 4)
    await stop(location)
    stopped = time.monotonic()
    await asyncio.sleep(2.5)
    late = [hit for hit in site.hits if hit.at > stopped + 1.0]
    assert late == [], f"requested after the task was stopped: {late}"
    assert site.count("/slow") < 40
    return location


async def test_cancel_stops_every_check_within_a_second(stack):
    async def cancel(location):
        resp = await stack.api.post(f"{location}/cancel")
        assert resp.status == 200

    location = await cancel_mid_task(stack, cancel)
    task = await stack.task(location)
    assert task["status"] == "cancelled"
    checked = [r for r in task["result"] if r["checked_at"] is not None]
    assert task["progress"]["done"] == len(checked) and task["progress"]["pending"] > 0


async def test_delete_stops_every_check_within_a_second(stack):
    async def delete(location):
        assert (await stack.api.delete(location)).status == 204

    location = await cancel_mid_task(stack, delete)
    assert (await stack.api.get(location)).status == 404
    assert await stack.db.fetchval("SELECT count(*) FROM task_urls") == 0


async def test_the_urls_of_a_deleted_task_are_skipped_unchecked(stack, redis):
    location = await stack.submit(["/ok?a", "/ok?b", "/ok?c"])
    await until(lambda: stream_length_at_least(redis, 3))
    assert (await stack.api.delete(location)).status == 204
    marker = await stack.submit(["/ok?marker"])
    await stack.start_worker()
    await stack.wait(marker)
    assert [hit.path for hit in stack.site.site.hits] == ["/ok?marker"]


async def test_a_task_becomes_ready_exactly_once_under_concurrent_results(stack, databases):
    location = await stack.submit([f"/ok?n={i}" for i in range(5)])
    task_id = uuid.UUID(location.rsplit("/", 1)[1])
    connections = [await asyncpg.connect(databases["crawler"]) for _ in range(5)]
    try:
        outcomes = await asyncio.gather(
            *(
                store.record_results(conn, [store.Checked(task_id, p, CheckResult(200))])
                for p, conn in enumerate(connections)
            )
        )
    finally:
        for conn in connections:
            await conn.close()
    assert sum(len(ready) for _, ready, _ in outcomes) == 1
    task = await stack.task(location)
    assert task["status"] == "ready" and task["progress"]["done"] == 5
    again, ready, _ = await store.record_results(
        stack.db, [store.Checked(task_id, 0, CheckResult(500))]
    )
    assert again == set() and ready == []  # ready once; and a result is never replaced
    assert (await stack.task(location))["result"][0]["status_code"] == 200


async def test_a_task_submitted_while_redis_is_down_is_checked_when_it_returns(
    aiohttp_client, databases, site, tmp_path
):
    await truncate_all(databases["crawler"])
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    api = await aiohttp_client(create_api(crawler_settings(databases, redis_url)))
    resp = await api.post("/api/v1/crawler/tasks", json={"urls": [site.url("/ok")]})
    assert resp.status == 202
    location = resp.headers["Location"]
    with redis_process(port, str(tmp_path)):
        await aiohttp_client(worker.create_app(worker_settings(databases, redis_url)))

        async def ready() -> bool:
            return (await (await api.get(location)).json())["status"] == "ready"

        await until(ready, patience=30)
    assert site.site.count("/ok") == 1


async def test_the_worker_reports_ready_with_its_consumer(stack):
    client = await stack.start_worker()
    body = await (await client.get("/readyz")).json()
    assert set(body["dependencies"]) >= {"postgres", "redis", "consumer"}
    metrics = await (await client.get("/metrics")).text()
    assert "crawler_check_slots" in metrics
    status = await (await client.get("/api/v1/crawler-worker/status")).json()
    assert status["check_slots"] == 10 and status["holding"] == 0
    assert status["allowed_networks"] == ["127.0.0.0/8"] and status["loopback_only"] is False
    assert status["consumer"].startswith("test-")

"""The crawler's API against its real database: tasks in, progress and results out."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.crawler.app import Settings, create_app
from tests.conftest import free_port
from tests.unit.conftest import truncate_all, until

STREAM = "crawler.urls"
SITE = "http://127.0.0.1:9"  # never requested: no worker runs in these tests


def crawler_settings(databases, redis_url, **overrides) -> Settings:
    values = {
        "service_name": "crawler",
        "database_url": databases["crawler"],
        "redis_url": redis_url,
        "crawler_max_urls": 5,
        "crawler_stats_interval": 0.1,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
async def crawler(aiohttp_client, databases, redis_url):
    await truncate_all(databases["crawler"])
    return await aiohttp_client(create_app(crawler_settings(databases, redis_url)))


@pytest.fixture
async def db(databases):
    conn = await asyncpg.connect(databases["crawler"])
    yield conn
    await conn.close()


async def stream_length_at_least(redis, count: int) -> bool:
    return await redis.xlen(STREAM) >= count


async def submit(client, urls, path="/api/v1/crawler/tasks", **extra):
    return await client.post(path, json={"urls": urls, **extra})


async def test_a_submitted_task_is_accepted_and_queued(crawler, db, redis):
    urls = [f"{SITE}/a", f"{SITE}/b", "HTTP://127.0.0.1:9/a#again", f"{SITE}/c"]
    resp = await submit(crawler, urls)
    assert resp.status == 202
    body = await resp.json()
    task_id = body["task_id"]
    assert body == {"task_id": task_id, "status": "pending", "total": 3, "duplicates": 1}
    assert resp.headers["Location"] == f"/api/v1/crawler/tasks/{task_id}"

    task = await (await crawler.get(resp.headers["Location"])).json()
    assert task["status"] == "pending"
    assert task["progress"] == {"total": 3, "done": 0, "failed": 0, "pending": 3}
    assert task["options"] == {"timeout": 10.0, "max_redirects": 5, "method": "HEAD"}
    assert [r["url"] for r in task["result"]] == [f"{SITE}/a", f"{SITE}/b", f"{SITE}/c"]
    assert all(r["checked_at"] is None and r["error"] is None for r in task["result"])
    assert task["started_at"] is None and task["finished_at"] is None

    # one event per URL in the outbox, committed with the task
    events = await db.fetch(
        "SELECT stream, event_type, aggregate_id, payload FROM outbox ORDER BY id"
    )
    assert [e["stream"] for e in events] == [STREAM] * 3
    assert {e["event_type"] for e in events} == {"task.url_queued"}
    assert {e["aggregate_id"] for e in events} == {task_id}


async def test_the_relay_publishes_the_urls_to_the_work_stream(crawler, redis):

    resp = await submit(crawler, [f"{SITE}/x", f"{SITE}/y"])
    task_id = (await resp.json())["task_id"]
    await until(lambda: stream_length_at_least(redis, 2))
    entries = await redis.xrange(STREAM)
    payloads = [entry[1][b"payload"].decode() for entry in entries]
    assert f'"task_id": "{task_id}"' in payloads[0] or f'"task_id":"{task_id}"' in payloads[0]
    assert [entry[1][b"type"] for entry in entries] == [b"task.url_queued"] * 2


async def test_submit_is_the_same_as_tasks(crawler):
    resp = await submit(crawler, [f"{SITE}/z"], path="/api/v1/crawler/submit")
    assert resp.status == 202
    body = await resp.json()
    assert body["total"] == 1 and body["status"] == "pending"
    assert (await crawler.get(resp.headers["Location"])).status == 200


async def test_options_are_kept_and_bounded(crawler):
    options = {"timeout": 2.5, "max_redirects": 0, "method": "GET"}
    resp = await submit(crawler, [f"{SITE}/o"], options=options)
    task = await (await crawler.get(resp.headers["Location"])).json()
    assert task["options"] == options
    for bad in (
        {"timeout": 0},
        {"timeout": 31},
        {"max_redirects": -1},
        {"max_redirects": 21},
        {"method": "POST"},
        {"retries": 9},
        {"timeout": "5"},
    ):
        resp = await submit(crawler, [f"{SITE}/o"], options=bad)
        assert resp.status == 400, bad
        assert (await resp.json())["code"] == "validation_error"


async def test_too_many_urls_is_a_413_and_queues_nothing(crawler, db):
    resp = await submit(crawler, [f"{SITE}/{i}" for i in range(6)])  # the limit is 5 here
    assert resp.status == 413
    body = await resp.json()
    assert body["code"] == "too_many_urls" and "at most 5" in body["error"]
    assert await db.fetchval("SELECT count(*) FROM tasks") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


async def test_invalid_urls_are_a_400_naming_each_index_and_queue_nothing(crawler, db):
    urls = [f"{SITE}/fine", "ftp://127.0.0.1/", f"{SITE}/fine2", "http:///nohost", "x" * 3000]
    resp = await submit(crawler, urls)
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == "validation_error"
    assert [d["field"] for d in body["details"]] == ["urls.1", "urls.3", "urls.4"]
    assert "scheme must be http or https" in body["details"][0]["message"]
    assert "1, 3, 4" in body["error"]
    assert await db.fetchval("SELECT count(*) FROM tasks") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"urls": []}, {"urls": "http://127.0.0.1/"}, {"urls": [7]}, {"urls": [None]}, []],
)
async def test_malformed_submissions_are_400s(crawler, body):
    resp = await crawler.post("/api/v1/crawler/tasks", json=body)
    assert resp.status == 400
    assert (await resp.json())["code"] == "validation_error"


async def test_an_unknown_task_is_a_404_in_the_error_shape(crawler):
    unknown = uuid.uuid4()
    for method, path in (
        ("GET", f"/api/v1/crawler/tasks/{unknown}"),
        ("DELETE", f"/api/v1/crawler/tasks/{unknown}"),
        ("POST", f"/api/v1/crawler/tasks/{unknown}/cancel"),
    ):
        resp = await crawler.request(method, path)
        assert resp.status == 404, path
        body = await resp.json()
        assert body["code"] == "not_found"
    body = await (await crawler.get(f"/api/v1/crawler/tasks/{unknown}")).json()
    assert body["error"] == f"Task {unknown} does not exist"
    malformed = await crawler.get("/api/v1/crawler/tasks/not-a-uuid")
    assert malformed.status == 400
    assert [d["field"] for d in (await malformed.json())["details"]] == ["task_id"]


async def test_tasks_are_listed_newest_first_with_progress_and_filtered(crawler):
    ids = []
    for i in range(3):
        ids.append((await (await submit(crawler, [f"{SITE}/{i}"])).json())["task_id"])
    await crawler.post(f"/api/v1/crawler/tasks/{ids[1]}/cancel")
    listing = await (await crawler.get("/api/v1/crawler/tasks")).json()
    assert [t["task_id"] for t in listing["items"]] == ids[::-1]
    assert listing["total"] == 3
    assert listing["items"][0]["progress"] == {"total": 1, "done": 0, "failed": 0, "pending": 1}
    assert "result" not in listing["items"][0]
    cancelled = await (await crawler.get("/api/v1/crawler/tasks?status=cancelled")).json()
    assert [t["task_id"] for t in cancelled["items"]] == [ids[1]] and cancelled["total"] == 1
    pending = await (await crawler.get("/api/v1/crawler/tasks?status=pending&limit=1")).json()
    assert pending["total"] == 2 and [t["task_id"] for t in pending["items"]] == [ids[2]]
    second = await (
        await crawler.get("/api/v1/crawler/tasks?status=pending&limit=1&offset=1")
    ).json()
    assert [t["task_id"] for t in second["items"]] == [ids[0]]
    bad = await crawler.get("/api/v1/crawler/tasks?status=error")
    assert bad.status == 400


async def test_cancel_then_delete(crawler, db):
    location = (await submit(crawler, [f"{SITE}/c1", f"{SITE}/c2"])).headers["Location"]
    resp = await crawler.post(f"{location}/cancel")
    assert resp.status == 200
    task = await resp.json()
    assert task["status"] == "cancelled" and task["finished_at"] is not None
    again = await crawler.post(f"{location}/cancel")  # cancelling twice changes nothing
    assert again.status == 200 and (await again.json())["finished_at"] == task["finished_at"]

    resp = await crawler.delete(location)
    assert resp.status == 204
    assert (await crawler.get(location)).status == 404
    assert (await crawler.delete(location)).status == 404
    assert await db.fetchval("SELECT count(*) FROM task_urls") == 0


async def test_deleting_a_task_drops_its_unpublished_urls(aiohttp_client, databases, db):
    await truncate_all(databases["crawler"])
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # the relay cannot publish
    client = await aiohttp_client(create_app(crawler_settings(databases, unreachable)))
    keep = (await submit(client, [f"{SITE}/keep"])).headers["Location"]
    drop = (await submit(client, [f"{SITE}/d1", f"{SITE}/d2"])).headers["Location"]
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 3
    assert (await client.delete(drop)).status == 204
    left = await db.fetch("SELECT aggregate_id FROM outbox")
    assert [row["aggregate_id"] for row in left] == [keep.rsplit("/", 1)[1]]


async def test_submissions_are_accepted_while_redis_is_down(aiohttp_client, databases, db):
    await truncate_all(databases["crawler"])
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    client = await aiohttp_client(create_app(crawler_settings(databases, unreachable)))
    for i in range(3):
        resp = await submit(client, [f"{SITE}/r{i}"])
        assert resp.status == 202
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 3


async def test_openapi_documents_every_route(crawler):
    doc = await (await crawler.get("/api/v1/crawler/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths) == {
        "/api/v1/crawler/tasks",
        "/api/v1/crawler/submit",
        "/api/v1/crawler/tasks/{task_id}",
        "/api/v1/crawler/tasks/{task_id}/cancel",
    }
    get = paths["/api/v1/crawler/tasks/{task_id}"]["get"]
    assert get["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    assert set(paths["/api/v1/crawler/tasks"]["post"]["responses"]) >= {"202", "400", "413"}
    assert "204" in paths["/api/v1/crawler/tasks/{task_id}"]["delete"]["responses"]
    assert (await crawler.get("/api/v1/crawler/docs")).status == 200


async def test_tasks_by_status_are_metrics(crawler):

    before = REGISTRY.get_sample_value("crawler_tasks_submitted_total") or 0
    await submit(crawler, [f"{SITE}/m1", f"{SITE}/m2"])

    async def counted() -> bool:
        return 'crawler_tasks{status="pending"} 1.0' in await (await crawler.get("/metrics")).text()

    await until(counted)
    text = await (await crawler.get("/metrics")).text()
    assert "crawler_pending_urls 2.0" in text
    assert REGISTRY.get_sample_value("crawler_tasks_submitted_total") == before + 1

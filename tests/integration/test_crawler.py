"""The crawler through the ingress: tasks, progress, results per URL, list, cancel,
delete, errors; checked by devstack's crawler-workers against a local site."""

from __future__ import annotations

import time
import uuid

import pytest

from .crawler_helpers import TASKS, Crawl


def test_a_task_gets_a_right_result_per_url(crawl: Crawl):
    site = crawl.site
    key = uuid.uuid4().hex[:8]
    urls = [
        crawl.url("/ok"),
        crawl.url("/status/404"),
        crawl.url("/redirect/3"),
        crawl.url(f"/flaky/{key}?failures=1"),  # 500 then 200: retried
        crawl.url("/hang"),
        crawl.url("/no-head"),
        f"http://127.0.0.1:{site.refused_port}/",
        f"{site.tls_base}/ok",
        crawl.url("/ok"),  # again: counted once
    ]
    resp = crawl.submit(urls, timeout=1.0)
    assert resp.status_code == 202
    body = resp.json()
    assert body["status"] == "pending" and body["total"] == 8 and body["duplicates"] == 1
    task = crawl.wait(resp.headers["Location"])
    assert task["progress"] == {"total": 8, "done": 4, "failed": 4, "pending": 0}
    result = {r["url"]: r for r in task["result"]}
    assert result[crawl.url("/ok")]["status_code"] == 200
    assert result[crawl.url("/ok")]["error"] is None
    assert result[crawl.url("/status/404")]["error"] == {"kind": "http", "detail": 404}
    chain = result[crawl.url("/redirect/3")]
    assert chain["redirects"] == 3 and chain["final_url"] == crawl.url("/redirect/0")
    flaky = result[crawl.url(f"/flaky/{key}?failures=1")]
    assert flaky["status_code"] == 200 and flaky["attempts"] == 2
    assert result[crawl.url("/hang")]["error"]["kind"] == "timeout"
    assert result[crawl.url("/no-head")]["status_code"] == 200
    assert result[f"http://127.0.0.1:{site.refused_port}/"]["error"]["kind"] == "connect"
    tls = result[f"{site.tls_base}/ok"]["error"]
    assert tls["kind"] == "ssl" and tls["detail"].startswith("SSL_ERROR")
    for item in task["result"]:
        assert item["checked_at"] is not None and item["elapsed_ms"] >= 0
    assert task["created_at"] <= task["started_at"] <= task["finished_at"]
    agents = {hit.user_agent for hit in site.site.hits}
    assert agents and all("Agora" in agent for agent in agents)


def test_progress_moves_while_a_task_runs(crawl: Crawl):
    location = crawl.submitted([crawl.url(f"/slow?ms=400&p={i}") for i in range(40)])
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = crawl.task(location)
        progress = task["progress"]
        seen.add((task["status"], progress["done"]))
        if task["status"] == "ready":
            break
        time.sleep(0.05)
    assert ("ready", 40) in seen
    partial = [done for status, done in seen if status == "running" and 0 < done < 40]
    assert partial, f"never seen part-way: {sorted(seen)}"


def test_the_course_submit_path_and_the_list_with_its_filter(crawl: Crawl):
    resp = crawl.agora.post("/api/v1/crawler/submit", json={"urls": [crawl.url("/ok?list")]})
    assert resp.status_code == 202
    ready = resp.headers["Location"]
    crawl.wait(ready)
    slow = crawl.submitted([crawl.url(f"/slow?ms=5000&l={i}") for i in range(3)])
    assert crawl.agora.post(f"{slow}/cancel").status_code == 200

    listing = crawl.agora.get(TASKS, params={"limit": 100}).json()
    ids = [item["task_id"] for item in listing["items"]]
    slow_id, ready_id = slow.rsplit("/", 1)[1], ready.rsplit("/", 1)[1]
    assert ids.index(slow_id) < ids.index(ready_id)  # newest first
    assert all("progress" in item for item in listing["items"])
    cancelled = crawl.agora.get(TASKS, params={"status": "cancelled", "limit": 100}).json()
    assert slow_id in [i["task_id"] for i in cancelled["items"]]
    assert all(item["status"] == "cancelled" for item in cancelled["items"])
    only_ready = crawl.agora.get(TASKS, params={"status": "ready", "limit": 100}).json()
    assert ready_id in [i["task_id"] for i in only_ready["items"]]
    assert slow_id not in [i["task_id"] for i in only_ready["items"]]
    page = crawl.agora.get(TASKS, params={"limit": 1, "offset": 1}).json()
    assert len(page["items"]) == 1 and page["total"] == listing["total"]


@pytest.mark.parametrize("stop", ["cancel", "delete"])
def test_cancel_and_delete_stop_a_large_slow_task_at_once(crawl: Crawl, stop: str):
    tag = uuid.uuid4().hex[:8]
    location = crawl.submitted([crawl.url(f"/slow?ms=1000&t={tag}&i={i}") for i in range(1000)])
    hits = crawl.site.site.hits
    deadline = time.monotonic() + 30
    while sum(tag in hit.path for hit in hits) < 20:
        assert time.monotonic() < deadline, "the slow task never started"
        time.sleep(0.05)
    if stop == "cancel":
        resp = crawl.agora.post(f"{location}/cancel")
        assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    else:
        assert crawl.agora.delete(location).status_code == 204
    stopped = time.monotonic()
    time.sleep(3)
    late = [hit.path for hit in list(hits) if tag in hit.path and hit.at > stopped + 1.0]
    assert late == [], f"{len(late)} URLs requested more than a second after the {stop}"
    assert sum(tag in hit.path for hit in hits) < 1000
    if stop == "cancel":
        task = crawl.agora.get(location).json()
        assert task["status"] == "cancelled" and task["finished_at"] is not None
        assert task["progress"]["pending"] > 0  # what was not checked stays without a result
        again = crawl.agora.post(f"{location}/cancel")  # cancelling again changes nothing
        assert again.status_code == 200 and again.json()["status"] == "cancelled"
        assert crawl.agora.delete(location).status_code == 204
    again = crawl.agora.get(location)
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    assert crawl.agora.delete(location).status_code == 404


def test_errors_are_in_the_shape_and_change_nothing(crawl: Crawl):
    before = crawl.agora.get(TASKS).json()["total"]
    bad = crawl.agora.post(
        TASKS,
        json={"urls": [crawl.url("/ok"), "ftp://127.0.0.1/", "http://127.0.0.1:99999/"]},
    )
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == "validation_error"
    assert [d["field"] for d in body["details"]] == ["urls.1", "urls.2"]
    too_many = crawl.agora.post(TASKS, json={"urls": [crawl.url(f"/ok?{i}") for i in range(1001)]})
    assert too_many.status_code == 413 and too_many.json()["code"] == "too_many_urls"
    malformed = crawl.agora.post(
        TASKS, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"
    options = crawl.agora.post(TASKS, json={"urls": [crawl.url("/ok")], "options": {"timeout": 0}})
    assert options.status_code == 400
    unknown = crawl.agora.get(f"{TASKS}/{uuid.uuid4()}")
    assert unknown.status_code == 404 and set(unknown.json()) == {"error", "code", "details"}
    assert crawl.agora.get(TASKS).json()["total"] == before


def test_openapi_and_docs_through_the_ingress(crawl: Crawl):
    doc = crawl.agora.get("/api/v1/crawler/openapi.json").json()
    assert "/api/v1/crawler/tasks/{task_id}" in doc["paths"]
    assert crawl.agora.get("/api/v1/crawler/docs").status_code == 200

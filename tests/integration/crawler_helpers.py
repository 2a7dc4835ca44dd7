"""The crawler through the ingress, against local sites this test process serves.

Every URL a test submits is built by `Crawl.url()` from a site on 127.0.0.1 and checked by
tests/crawlsite.py loopback_only(): nothing else can be submitted, so no check of these
tests leaves the machine whatever the workers' guard does. devstack's workers may reach
127.0.0.0/8 only because `make integration` sets CRAWLER_ALLOWED_NETWORKS so
(tests/integration/values.yaml); on a cluster the workers cannot reach this machine's
127.0.0.1 at all, so these tests need devstack.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.crawlsite import Running, loopback_only, site_in_thread

TASKS = "/api/v1/crawler/tasks"


@dataclass
class Crawl:
    agora: httpx.Client
    site: Running

    def url(self, path: str) -> str:
        return self.site.url(path)

    def submit(self, urls: list[str], **options: object) -> httpx.Response:
        for url in urls:
            loopback_only(url)
        body: dict[str, object] = {"urls": urls}
        if options:
            body["options"] = options
        return self.agora.post(TASKS, json=body)

    def submitted(self, urls: list[str], **options: object) -> str:
        resp = self.submit(urls, **options)
        assert resp.status_code == 202, resp.text
        return resp.headers["Location"]

    def task(self, location: str) -> dict:
        resp = self.agora.get(location)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait(self, location: str, status: str = "ready", patience: float = 60) -> dict:
        deadline = time.monotonic() + patience
        while True:
            task = self.task(location)
            if task["status"] == status:
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task not {status} after {patience} s: {task['progress']}")
            time.sleep(0.1)


@contextlib.contextmanager
def open_crawl(agora: httpx.Client) -> Iterator[Crawl]:
    """A local site served by this process, and the crawler to check it with."""
    if not os.environ.get("AGORA_RUN_DIR"):
        pytest.skip("the crawler's local test sites are reachable from devstack's workers only")
    with site_in_thread() as site:
        crawl = Crawl(agora, site)
        probe = crawl.wait(crawl.submitted([site.url("/ok?probe")]))
        error = probe["result"][0]["error"]
        if error and error["kind"] == "blocked":
            pytest.fail(
                "crawler-worker blocks 127.0.0.1: run through `make integration`, whose stack"
                " sets CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8 (tests/integration/values.yaml)"
            )
        yield crawl

"""crawler: the API of URL-check tasks (DESIGN.md 12).

It owns tasks and their per-URL results in PostgreSQL (database `crawler`, shared with
crawler-worker as one bounded context). A submitted task is committed with one
`task.url_queued` event per URL in the kit's outbox; the relay publishes them to the work
stream (CRAWLER_URLS_STREAM), where crawler-worker replicas take them through a consumer
group. So a task answered 202 is never lost, and Redis being down at submit time only
delays its checks. The checks themselves run in services/crawler/worker.py.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit import outbox
from services.kit.background import background, sleep_unless
from services.kit.config import load_settings
from services.kit.db import CONNECTION_ERRORS
from services.kit.keys import DB_POOL, SETTINGS
from services.kit.outbox import OutboxSettings

from . import store
from .metrics import PENDING_URLS, TASKS
from .models import TaskStatus
from .views import api

log = logging.getLogger("agora.crawler")


class Settings(OutboxSettings):
    crawler_max_urls: int = Field(1000, ge=1, le=10_000, description="URLs per task; more: 413")
    crawler_urls_stream: str = Field("crawler.urls", min_length=1, max_length=200)
    crawler_stats_interval: float = Field(5.0, gt=0, le=600, description="tasks by status")


async def count_tasks(app: web.Application, stopping: asyncio.Event) -> None:
    """Tasks by status and the URLs left to check, as gauges."""
    statuses = TaskStatus.__args__  # type: ignore[attr-defined]
    while not await sleep_unless(stopping, app[SETTINGS].crawler_stats_interval):
        try:
            counts, pending = await store.statistics(app[DB_POOL])
        except (*CONNECTION_ERRORS, TimeoutError) as error:
            log.warning("crawler: tasks not counted (%r)", error)
            continue
        for status in statuses:
            TASKS.labels(status).set(counts.get(status, 0))
        PENDING_URLS.set(pending)


def create_app(settings: Settings | None = None) -> web.Application:
    return kit.create_app(
        settings or load_settings(Settings),
        api,
        postgres=True,
        redis=True,  # only the outbox relay talks to Redis: submitting never does
        contexts=[outbox.relay_ctx(), background("task-counts", count_tasks)],
    )

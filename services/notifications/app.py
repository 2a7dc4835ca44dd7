"""notifications: an HTTP server that, in the same event loop, consumes the orders
stream as a consumer group and records a notification per order event, once.

Its record is a PostgreSQL table (database `notifications`), not Redis: the record is what
makes processing idempotent and what GET /api/v1/notifications lists (paginated, filtered
by order, with a total), and it has to outlive the stream. Redis holds the stream, the
group and the pending entries; PostgreSQL holds what was done. An event is acknowledged
(XACK) only after its row is committed, so a crash in between redelivers it and the
unique event_id turns the second processing into a no-op.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.background import background
from services.kit.config import KitSettings, load_settings
from services.kit.keys import DB_POOL, READINESS, REDIS, SETTINGS
from services.kit.streams import ConsumerOptions, StreamConsumer

from . import store
from .views import api

CONSUMER = web.AppKey("consumer", StreamConsumer)


class Settings(KitSettings):
    events_stream: str = Field("orders.events", min_length=1, max_length=200)
    consumer_group: str = Field("notifications", min_length=1, max_length=200)
    claim_idle_seconds: float = Field(
        30.0, gt=0, le=3600, description="an entry pending this long is claimed from its consumer"
    )
    consumer_batch: int = Field(100, ge=1, le=10_000)


async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    consumer = StreamConsumer(
        app[REDIS],
        service=settings.service_name,
        stream=settings.events_stream,
        group=settings.consumer_group,
        handler=functools.partial(store.record_event, app[DB_POOL]),
        options=ConsumerOptions(
            batch=settings.consumer_batch, claim_idle=settings.claim_idle_seconds
        ),
    )
    app[CONSUMER] = consumer

    async def consuming() -> None:  # reported by /readyz, never failing it
        if consumer.last_error:
            raise RuntimeError(consumer.last_error)

    app[READINESS].add_check("consumer", consuming)
    yield


async def consume(app: web.Application, stopping: asyncio.Event) -> None:
    await app[CONSUMER].run(stopping)


def create_app(settings: Settings | None = None) -> web.Application:
    return kit.create_app(
        settings or load_settings(Settings),
        api,
        postgres=True,
        redis=True,
        contexts=[consumer_ctx, background("consumer", consume)],
    )

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

import functools

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import load_settings
from services.kit.events import ConsumerSettings, Subscription, consuming
from services.kit.keys import DB_POOL, SETTINGS

from . import store
from .views import api


class Settings(ConsumerSettings):
    events_stream: str = Field(
        "orders.events", min_length=1, max_length=200, description="the stream it consumes"
    )


def subscriptions(app: web.Application) -> list[Subscription]:
    return [
        Subscription(
            app[SETTINGS].events_stream, functools.partial(store.record_event, app[DB_POOL])
        )
    ]


def create_app(settings: Settings | None = None) -> web.Application:
    return kit.create_app(
        settings or load_settings(Settings),
        api,
        postgres=True,
        redis=True,
        contexts=consuming(subscriptions),
    )

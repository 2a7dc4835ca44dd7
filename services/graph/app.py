"""graph: who follows whom, on its own PostgreSQL database.

A follow checks with users (over HTTP) that the followee exists, then commits the follow,
both users' counts and its follow.created event (the kit's outbox, stream
`graph.events`) in one transaction; timelines backfill and trim home timelines from there.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import load_settings
from services.kit.outbox import OutboxSettings, relay_ctx

from .views import api


class Settings(OutboxSettings):
    users_url: str = Field(pattern=r"^https?://")
    events_stream: str = Field(
        "graph.events", min_length=1, max_length=200, description="where its events go"
    )


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        upstreams={"users": settings.users_url},
        contexts=[relay_ctx()],
    )

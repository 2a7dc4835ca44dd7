"""orders: places orders against catalog's stock, on its own PostgreSQL database, and
publishes their events to a Redis stream through a transactional outbox."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.background import background
from services.kit.config import KitSettings, load_settings

from . import lifecycle, outbox
from .views import api

URL = r"^https?://"


class Settings(KitSettings):
    catalog_url: str = Field(pattern=URL)
    users_url: str = Field(pattern=URL)
    events_stream: str = Field("orders.events", min_length=1, max_length=200)
    events_stream_maxlen: int = Field(
        1_000_000, ge=10_000, description="approximate cap on the stream's length"
    )
    pending_order_timeout: float = Field(
        30.0, gt=0, le=3600, description="a pending order this old was abandoned: roll it back"
    )
    reconcile_interval: float = Field(5.0, gt=0, le=600)
    outbox_batch: int = Field(200, ge=1, le=10_000)
    outbox_poll_interval: float = Field(1.0, gt=0, le=60, description="when no NOTIFY wakes it")
    outbox_standby_interval: float = Field(
        2.0, gt=0, le=60, description="how often a standby relay tries to take the lead"
    )


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        upstreams={"catalog": settings.catalog_url, "users": settings.users_url},
        contexts=[
            background("outbox-relay", outbox.relay),
            background("reconciler", lifecycle.reconciler),
        ],
    )

"""orders: places orders against catalog's stock, on its own PostgreSQL database, and
publishes their events to a Redis stream through a transactional outbox."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.background import background
from services.kit.config import load_settings
from services.kit.outbox import OutboxSettings, relay_ctx

from . import lifecycle
from .views import api

URL = r"^https?://"


class Settings(OutboxSettings):
    catalog_url: str = Field(pattern=URL)
    users_url: str = Field(pattern=URL)
    events_stream: str = Field(
        "orders.events", min_length=1, max_length=200, description="where its events go"
    )
    pending_order_timeout: float = Field(
        30.0, gt=0, le=3600, description="a pending order this old was abandoned: roll it back"
    )
    reconcile_interval: float = Field(5.0, gt=0, le=600)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        upstreams={"catalog": settings.catalog_url, "users": settings.users_url},
        contexts=[
            relay_ctx(),
            background("reconciler", lifecycle.reconciler),
        ],
    )

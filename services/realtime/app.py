"""realtime: WebSockets (an echo and a live count of connected clients, correct across
replicas through Redis) and the landing page that shows the count."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.background import background
from services.kit.config import KitSettings, load_settings
from services.kit.keys import REDIS, SETTINGS

from .hub import Hub, announce, push, subscribe
from .keys import HUB, PRESENCE
from .presence import Presence
from .views import api


class Settings(KitSettings):
    presence_ttl: float = Field(
        10.0, ge=1, le=300, description="a dead replica stops being counted within this"
    )
    presence_key: str = Field(
        "realtime:presence", min_length=1, max_length=200, pattern=r"^[\w:.-]+$"
    )
    counter_period: float = Field(10.0, gt=0, le=3600, description="push at least this often")
    counter_min_interval: float = Field(
        0.25, ge=0, le=60, description="coalesce changes: at most one push per interval"
    )


def worker_id(settings: Settings) -> str:
    """`<host>:<port>/<pid>`: the replica (a pod's hostname, or a devstack port), then
    the worker process."""
    return f"{socket.gethostname()}:{settings.port}/{os.getpid()}"


async def presence_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)
    ident = worker_id(settings)
    app[HUB] = Hub(
        settings.service_name,
        ident,
        min_interval=settings.counter_min_interval,
        period=settings.counter_period,
    )
    app[PRESENCE] = Presence(
        app[REDIS], ident, key=settings.presence_key, ttl=settings.presence_ttl
    )
    yield


def create_app(settings: Settings | None = None) -> web.Application:
    return kit.create_app(
        settings or load_settings(Settings),
        api,
        redis=True,
        contexts=[
            presence_ctx,
            background("presence-announce", announce),
            background("presence-subscribe", subscribe),
            background("counter-push", push),
        ],
    )

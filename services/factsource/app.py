"""factsource: a catfact.ninja-compatible source of bundled cat facts."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import KitSettings, load_settings

from .views import LATENCY, api


class Settings(KitSettings):
    artificial_latency_ms: int = Field(
        0, ge=0, le=60_000, description="wait this long before every answer (benchmarks)"
    )


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    app = kit.create_app(settings, api)
    app[LATENCY] = settings.artificial_latency_ms / 1000
    return app

"""catalog: brands and products with stock, on its own PostgreSQL database."""

from __future__ import annotations

from aiohttp import web

from services.kit import app as kit
from services.kit.config import KitSettings, load_settings

from .store import numeric_as_text
from .views import api

Settings = KitSettings


def create_app(settings: KitSettings | None = None) -> web.Application:
    return kit.create_app(
        settings or load_settings(Settings), api, postgres=True, postgres_init=numeric_as_text
    )

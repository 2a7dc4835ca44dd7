"""calc: sum, product, quotient, squares, square roots and ratios; no state."""

from __future__ import annotations

from aiohttp import web

from services.kit import app as kit
from services.kit.config import KitSettings, load_settings

from .views import api

Settings = KitSettings


def create_app(settings: KitSettings | None = None) -> web.Application:
    return kit.create_app(settings or load_settings(Settings), api)

"""A bare aiohttp JSON handler: no middleware, no metrics, no logs. The baseline."""

from __future__ import annotations

import orjson
from aiohttp import web

from services.kit.config import KitSettings

from .payload import PRODUCT_LIKE

Settings = KitSettings


async def product_like(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(PRODUCT_LIKE), content_type="application/json")


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(settings: KitSettings | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get("/bench/bare/{id}", product_like)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    return app

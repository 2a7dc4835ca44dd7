"""The same handler inside the kit: request id, deadline, errors, metrics, access log."""

from __future__ import annotations

from aiohttp import web

from services.kit import app as kit
from services.kit.api import Api, json_response
from services.kit.auth import REQUIRED, Caller
from services.kit.config import KitSettings, load_settings

from .payload import PRODUCT_LIKE

Settings = KitSettings
api = Api("bench-kit", title="Benchmark baseline")


@api.get("/bench/kit/{id}", summary="A product-sized answer")
@api.get("/bench/kit-quiet/{id}", summary="The same, for the quiet variant")
async def product_like(request: web.Request) -> web.Response:
    return json_response(PRODUCT_LIKE)


@api.get("/bench/kit/auth/{id}", summary="The same, for a signed-in user", auth=REQUIRED)
async def product_like_signed_in(request: web.Request, caller: Caller) -> web.Response:
    return json_response(PRODUCT_LIKE)


def create_app(settings: KitSettings | None = None) -> web.Application:
    return kit.create_app(settings or load_settings(Settings), api)

"""The same handler inside the kit: request id, deadline, errors, metrics, access log."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from services.kit import app as kit
from services.kit.api import Api, json_response
from services.kit.auth import REQUIRED, Caller, write_keypair
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


@functools.cache
def _public_key_file() -> str:
    keys = Path(tempfile.mkdtemp(prefix="agora-bench-kit-"))
    write_keypair(keys)
    return str(keys / "public.pem")


def bench_settings(**overrides: Any) -> KitSettings:
    """The in-process cases' settings: an auth route needs a public key to start, so the
    app gets one of its own (a keypair made once per run)."""
    return KitSettings(
        service_name="bench-kit", auth_public_key_file=_public_key_file(), **overrides
    )

"""socialcompat: DeathStarBench socialNetwork's HTTP API over Agora (docs/socialcompat.md).

A translation layer: no state of its own but caches (id mappings, users' tokens). It
holds the impersonation credential (IMPERSONATION_CREDENTIAL_FILE), with which users
gives it a token of any user; that is why the chart runs it only when enabled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.app import MissingSetting
from services.kit.config import KitSettings, load_settings
from services.kit.keys import HTTP_CLIENT, IMPERSONATION_CREDENTIAL, SETTINGS

from .agora import Agora
from .keys import AGORA
from .views import api

URL = r"^https?://"


class Settings(KitSettings):
    users_url: str = Field(pattern=URL)
    posts_url: str = Field(pattern=URL)
    graph_url: str = Field(pattern=URL)
    timelines_url: str = Field(pattern=URL)
    compat_cache_size: int = Field(
        200_000, ge=100, le=10_000_000, description="accounts and tokens cached per worker"
    )
    compat_token_margin: float = Field(
        120.0, ge=0, le=3600, description="a token is renewed this many seconds before it expires"
    )


async def agora_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[AGORA] = Agora(
        app[HTTP_CLIENT],
        app[IMPERSONATION_CREDENTIAL],
        cache_size=settings.compat_cache_size,
        token_margin=settings.compat_token_margin,
    )
    yield


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    if not settings.impersonation_credential_file:
        raise MissingSetting(
            "IMPERSONATION_CREDENTIAL_FILE", "by socialcompat: users gives it tokens on it"
        )
    return kit.create_app(
        settings,
        api,
        upstreams={
            "users": settings.users_url,
            "posts": settings.posts_url,
            "graph": settings.graph_url,
            "timelines": settings.timelines_url,
        },
        contexts=[agora_ctx],
    )

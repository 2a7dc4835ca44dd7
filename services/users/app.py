"""users: people, their social accounts and logins, on its own PostgreSQL database.

It is the one service that signs tokens (it is given AUTH_PRIVATE_KEY_FILE: values.yaml
`auth: sign`); it also publishes user.created to the stream `users.events` through the
kit's outbox, and counts failed logins in Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.app import MissingSetting
from services.kit.config import load_settings
from services.kit.keys import REDIS, SETTINGS
from services.kit.outbox import OutboxSettings, relay_ctx
from services.kit.ratelimit import AttemptLimiter

from .keys import LOGIN_LIMITER
from .passwords import passwords_ctx
from .views import api


class Settings(OutboxSettings):
    events_stream: str = Field(
        "users.events", min_length=1, max_length=200, description="where its events go"
    )
    # argon2id (services/users/passwords.py says why these)
    password_hash_time_cost: int = Field(2, ge=1, le=20)
    password_hash_memory_kib: int = Field(19 * 1024, ge=8, le=1024 * 1024)
    password_hash_parallelism: int = Field(1, ge=1, le=16)
    password_hash_threads: int = Field(1, ge=1, le=16, description="hashing threads per worker")
    # Failed logins, per fixed window
    login_failure_window: int = Field(300, ge=1, le=86400, description="seconds")
    login_max_failures_per_username: int = Field(5, ge=1, le=10_000)
    login_max_failures_per_client: int = Field(50, ge=1, le=100_000)
    trusted_proxies: int = Field(
        1, ge=0, le=10, description="proxies in front that append to X-Forwarded-For"
    )


async def limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    app[LOGIN_LIMITER] = AttemptLimiter(app[REDIS], window=app[SETTINGS].login_failure_window)
    yield


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    if not settings.auth_private_key_file:
        raise MissingSetting("AUTH_PRIVATE_KEY_FILE", "by users: it signs the login tokens")
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        contexts=[passwords_ctx, limiter_ctx, relay_ctx()],
    )

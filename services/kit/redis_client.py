"""Redis: one asyncio client (with its connection pool) per worker, in cleanup_ctx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .keys import READINESS, REDIS, SETTINGS

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)


def connect(url: str) -> aioredis.Redis:
    """Does not connect yet: the pool connects on first use and reconnects after errors."""
    return aioredis.from_url(
        url,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=15,
        retry_on_timeout=False,
    )


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url is not None  # checked by create_app
    client = connect(settings.redis_url)
    app[REDIS] = client
    app[READINESS].add_check("redis", client.ping)
    yield
    await client.aclose()

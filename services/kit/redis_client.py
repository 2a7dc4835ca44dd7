"""Redis: one asyncio client (with its connection pool) per worker, in cleanup_ctx, and
subscriptions to pub/sub channels that survive Redis going away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .background import sleep_unless
from .keys import READINESS, REDIS, SETTINGS, TRACER
from .tracing import trace_redis

log = logging.getLogger("agora.redis")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)


def connect(url: str) -> aioredis.Redis:
    """Does not connect yet: the pool connects on first use and reconnects after errors.

    A command that finds its pooled connection closed (Redis restarted since) is sent once
    more on a new connection: without it, the first command on each stale connection
    failed (a 503) after every Redis restart. A timeout is not retried: the command may
    have run."""
    return aioredis.from_url(
        url,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=15,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        retry_on_timeout=False,
    )


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url is not None  # checked by create_app
    client = connect(settings.redis_url)
    if TRACER in app:
        trace_redis(app[TRACER], client)
    app[REDIS] = client
    app[READINESS].add_check("redis", client.ping)
    yield
    await client.aclose()


async def listen(
    client: aioredis.Redis,
    channel: str,
    handle: Callable[[bytes], None],
    stopping: asyncio.Event,
    *,
    on_subscribed: Callable[[], None] = lambda: None,
    on_lost: Callable[[BaseException], None] = lambda error: None,
    retry_seconds: float = 1.0,
) -> None:
    """Call `handle(data)` for every message published on `channel` until `stopping`.

    Pub/sub delivers only to those subscribed at that moment: after every (re)subscription
    `on_subscribed()` runs, so the caller can read again what it may have missed. When
    Redis goes away, `on_lost(error)` runs and the subscription is retried every
    `retry_seconds`, quietly: an outage is one warning, not a traceback a second.
    """
    lost = False
    while not stopping.is_set():
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if lost:
                log.info("subscribed to %s again", channel)
            lost = False
            on_subscribed()
            while not stopping.is_set():
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    handle(message["data"])
        except CONNECTION_ERRORS as error:
            if not lost:
                log.warning("subscription to %s lost: %r", channel, error)
            lost = True
            on_lost(error)
            await sleep_unless(stopping, retry_seconds)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

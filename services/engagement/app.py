"""engagement: likes and comments on posts, with their counts, on its own PostgreSQL
database. It consumes posts.events (a post it has seen needs no call to posts; a deleted
post's likes and comments are removed) and publishes like.* and comment.* events through
the kit's outbox (docs/social.md, Engagement)."""

from __future__ import annotations

import functools

import asyncpg
from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import load_settings
from services.kit.events import ConsumerSettings, Event, Subscription, consuming
from services.kit.keys import DB_POOL, SETTINGS
from services.kit.outbox import OutboxSettings, relay_ctx
from services.kit.streams import InvalidEntry

from . import store
from .views import api

URL = r"^https?://"


class Settings(OutboxSettings, ConsumerSettings):
    posts_url: str = Field(pattern=URL)
    users_url: str = Field(pattern=URL, description="@mentions in comments resolved there")
    events_stream: str = Field(
        "engagement.events", min_length=1, max_length=200, description="where its events go"
    )
    posts_events_stream: str = Field("posts.events", min_length=1, max_length=200)


async def on_post_event(db: asyncpg.Pool, event: Event) -> bool:
    """post.created: the post is known (likes need not ask posts); post.deleted: its likes
    and comments removed. Idempotent: both are no-ops the second time."""
    try:
        post_id, author_id = int(event.payload["post_id"]), int(event.payload["author_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidEntry(f"{event.type}: {type(error).__name__}: {error}") from None
    if event.type == "post.created":
        return await store.remember_post(db, post_id, author_id)
    if event.type == "post.deleted":
        return await store.forget_post(db, post_id, author_id)
    return False  # a kind of post event engagement has no use for


def subscriptions(app: web.Application) -> list[Subscription]:
    handler = functools.partial(on_post_event, app[DB_POOL])
    return [Subscription(app[SETTINGS].posts_events_stream, handler)]


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        upstreams={"posts": settings.posts_url, "users": settings.users_url},
        contexts=[relay_ctx(), *consuming(subscriptions)],
    )

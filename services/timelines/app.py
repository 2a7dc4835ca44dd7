"""timelines: home and user timelines over Redis (a cache, no database), fed by posts'
and graph's events, hydrated from posts (docs/social.md, Timelines)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import load_settings
from services.kit.counts import CountsSettings, counts_ctx
from services.kit.events import ConsumerSettings, Subscription, consuming
from services.kit.keys import HTTP_CLIENT, REDIS, SETTINGS

from .fanout import FanOut
from .keys import FAN_OUT, READER
from .reads import Reader, ReadSettings
from .sources import Sources
from .store import Timelines
from .views import api

URL = r"^https?://"


class Settings(ConsumerSettings, CountsSettings):
    posts_url: str = Field(pattern=URL)
    graph_url: str = Field(pattern=URL)
    posts_events_stream: str = Field("posts.events", min_length=1, max_length=200)
    graph_events_stream: str = Field("graph.events", min_length=1, max_length=200)
    home_timeline_cap: int = Field(800, ge=1, le=100_000, description="posts per timeline")
    fanout_max_followers: int = Field(
        5000, ge=0, le=100_000_000, description="above it: merged at read, not fanned out"
    )
    backfill_posts: int = Field(100, ge=0, le=800, description="a followee's posts on follow")
    post_cache_ttl: float = Field(10.0, gt=0, le=3600, description="seconds a hot post is cached")
    big_followees_ttl: float = Field(
        30.0, gt=0, le=3600, description="seconds a user's big followees are cached"
    )


async def timelines_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    timelines = Timelines(app[REDIS], settings.home_timeline_cap)
    sources = Sources(app[HTTP_CLIENT])
    app[READER] = Reader(
        timelines,
        sources,
        ReadSettings(
            cap=settings.home_timeline_cap,
            fanout_max_followers=settings.fanout_max_followers,
            post_cache_ttl=settings.post_cache_ttl,
            big_followees_ttl=settings.big_followees_ttl,
        ),
    )
    app[FAN_OUT] = FanOut(
        timelines,
        sources,
        max_followers=settings.fanout_max_followers,
        backfill=settings.backfill_posts,
    )
    yield


def subscriptions(app: web.Application) -> list[Subscription]:
    settings, fan_out = app[SETTINGS], app[FAN_OUT]
    return [
        Subscription(settings.posts_events_stream, fan_out.on_post_event),
        Subscription(settings.graph_events_stream, fan_out.on_graph_event),
    ]


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        redis=True,
        upstreams={
            "posts": settings.posts_url,
            "graph": settings.graph_url,
            **settings.counts_upstream(),
        },
        contexts=[timelines_ctx, counts_ctx, *consuming(subscriptions)],
    )

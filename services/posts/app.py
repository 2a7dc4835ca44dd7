"""posts: the social network's posts, on its own PostgreSQL database.

Composing a post resolves its @mentions with users (over HTTP), shortens its URLs, and
commits the post with its post.created event (the kit's outbox, stream `posts.events`);
timelines fan it out from there, off the request path.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import load_settings
from services.kit.counts import CountsSettings, counts_ctx
from services.kit.outbox import OutboxSettings, relay_ctx

from .views import api

URL = r"^https?://"


class Settings(OutboxSettings, CountsSettings):
    users_url: str = Field(pattern=URL)
    events_stream: str = Field(
        "posts.events", min_length=1, max_length=200, description="where its events go"
    )
    short_link_base: str = Field(
        "",
        pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$",
        description="prefix of short links (the public URL); empty: /s/<code>, relative",
    )


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        upstreams={"users": settings.users_url, **settings.counts_upstream()},
        contexts=[relay_ctx(), counts_ctx],
    )

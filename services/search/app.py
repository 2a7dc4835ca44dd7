"""search: full-text search of posts and of users on its own PostgreSQL database (the
index), fed by posts.events and users.events through a consumer group, hydrated by posts,
rebuilt by `agora-reindex search` (docs/social.md, Search)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import load_settings
from services.kit.events import ConsumerSettings, Event, Subscription, consuming
from services.kit.keys import DB_POOL, HTTP_CLIENT, SETTINGS
from services.kit.streams import InvalidEntry

from . import store
from .views import api, posts_by_id

URL = r"^https?://"


class Settings(ConsumerSettings):
    posts_url: str = Field(pattern=URL, description="hits hydrated, new posts' text read there")
    users_url: str = Field(pattern=URL, description="read by agora-reindex")
    posts_events_stream: str = Field("posts.events", min_length=1, max_length=200)
    users_events_stream: str = Field("users.events", min_length=1, max_length=200)
    search_timeout_ms: int = Field(
        1000, ge=10, le=60_000, description="a search running longer is refused (422)"
    )


class Indexer:
    """What search does with events: index a new post (its text read from posts), drop a
    deleted one, index a new account."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def on_post_event(self, event: Event) -> bool:
        try:
            post_id = int(event.payload["post_id"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidEntry(f"{event.type}: {type(error).__name__}: {error}") from None
        db = self.app[DB_POOL]
        if event.type == "post.created":
            # Gone already (deleted before we got here): nothing to index.
            return (
                await store.index_posts(db, await posts_by_id(self.app[HTTP_CLIENT], [post_id])) > 0
            )
        if event.type == "post.deleted":
            return await store.remove_post(db, post_id)
        return False

    async def on_user_event(self, event: Event) -> bool:
        if event.type != "user.created":
            return False
        try:
            return await store.index_user(self.app[DB_POOL], event.payload)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidEntry(f"{event.type}: {type(error).__name__}: {error}") from None


def subscriptions(app: web.Application) -> list[Subscription]:
    settings, indexer = app[SETTINGS], Indexer(app)
    return [
        Subscription(settings.posts_events_stream, indexer.on_post_event),
        Subscription(settings.users_events_stream, indexer.on_user_event),
    ]


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    return kit.create_app(
        settings,
        api,
        postgres=True,
        redis=True,
        upstreams={"posts": settings.posts_url},
        contexts=consuming(subscriptions),
    )

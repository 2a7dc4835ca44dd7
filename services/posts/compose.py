"""Composing a post: its text's URLs shortened, @mentions resolved by users, #hashtags
collected, then the post and its event committed (store.create)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
from aiohttp import web

from services.kit.auth import Caller
from services.kit.errors import ApiError, field_error
from services.kit.keys import DB_POOL, HTTP_CLIENT, SETTINGS
from services.kit.mentions import resolve_mentions

from . import store, text
from .models import PostIn

ATTEMPTS = 3  # a taken id (1,024 posts in a millisecond) or short code: draw again


def _codes() -> Iterator[str]:
    while True:
        yield text.new_code()


async def compose(app: web.Application, caller: Caller, body: PostIn) -> dict[str, Any]:
    db, settings = app[DB_POOL], app[SETTINGS]
    if body.reply_to is not None and not await store.exists(db, body.reply_to):
        raise ApiError(
            422,
            f"Post {body.reply_to} does not exist",
            code="unprocessable",
            details=[field_error("reply_to", "no such post", "not_found")],
        )
    base = settings.short_link_base.rstrip("/")

    def short_link(code: str) -> str:
        return f"{base}/s/{code}"

    shortened = text.shorten(body.text, short_link, _codes())
    mentions = await resolve_mentions(app[HTTP_CLIENT], shortened.words)
    hashtags = text.hashtags(shortened.words)
    for attempt in range(ATTEMPTS):
        try:
            return await store.create(
                db,
                settings.events_stream,
                author_id=caller.id,
                author_username=caller.username,
                text=shortened.text,
                mentions=mentions,
                hashtags=hashtags,
                links=shortened.links,
                short_urls=[short_link(code) for code, _ in shortened.links],
                media=[item.model_dump() for item in body.media],
                reply_to=body.reply_to,
                kind=body.kind,
            )
        except asyncpg.UniqueViolationError:
            if attempt == ATTEMPTS - 1:
                raise
            shortened = text.shorten(body.text, short_link, _codes())
    raise AssertionError("unreachable")

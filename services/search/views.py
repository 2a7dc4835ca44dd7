"""HTTP handlers of search: posts and users."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.kit.api import Api, json_response
from services.kit.errors import ApiError
from services.kit.http_client import HttpClient
from services.kit.keys import DB_POOL, HTTP_CLIENT, SETTINGS

from . import query as parser
from . import store
from .models import PostHits, PostSearchQuery, UserHits, UserSearchQuery

api = Api(
    "search",
    title="Agora search",
    description="Full-text search of posts (words, phrases, #hashtags, @usernames) and of"
    " users (docs/social.md, Search), fed by events.",
)
REFUSED = [400, 422, 502, 503]


async def posts_by_id(client: HttpClient, post_ids: list[int]) -> list[dict[str, Any]]:
    """The posts that exist, as posts answers them, in order (deleted ones left out)."""
    if not post_ids:
        return []
    params = {"ids": ",".join(map(str, post_ids))}
    answer = await client.get("posts", "/api/v1/posts", params=params)
    if answer.status != 200:
        raise ApiError(502, f"posts answered {answer.status}", code="bad_gateway")
    return answer.json()["items"]


def _next(found: int, limit: int, offset: int) -> str | None:
    return str(offset + limit) if found == limit else None


def too_broad() -> ApiError:
    return ApiError(
        422, "The query matches too much to rank in time; add terms", code="query_too_broad"
    )


@api.get(
    "/api/v1/search/posts",
    summary="Search posts: by relevance, then newest first",
    query=PostSearchQuery,
    response=PostHits,
    errors=REFUSED,
)
async def search_posts(request: web.Request, query: PostSearchQuery) -> web.Response:
    """Every term must match. Deleted posts never appear: they leave the index on
    post.deleted, and hits are hydrated by posts, which leaves out any it deleted."""
    app = request.app
    terms = parser.parse(query.q)
    try:
        ids = await store.search_posts(
            app[DB_POOL], terms, query.limit, query.offset, app[SETTINGS].search_timeout_ms
        )
    except store.NoSearchableTerms:
        raise ApiError(
            422, "The query has only words too common to search for", code="no_searchable_terms"
        ) from None
    except store.TooBroad:
        raise too_broad() from None
    posts = await posts_by_id(app[HTTP_CLIENT], ids)
    return json_response({"items": posts, "next": _next(len(ids), query.limit, query.offset)})


@api.get(
    "/api/v1/search/users",
    summary="Search users by the start of their username or name (typos too)",
    query=UserSearchQuery,
    response=UserHits,
    errors=[400, 422],
)
async def search_users(request: web.Request, query: UserSearchQuery) -> web.Response:
    app = request.app
    try:
        users = await store.search_users(
            app[DB_POOL],
            query.q.strip(),
            query.limit,
            query.offset,
            app[SETTINGS].search_timeout_ms,
        )
    except store.TooBroad:
        raise too_broad() from None
    return json_response({"items": users, "next": _next(len(users), query.limit, query.offset)})

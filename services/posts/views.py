"""HTTP handlers of posts: compose, read (one, a batch, a set of authors'), delete, and
the short links' redirects."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, created, json_response, no_content, path_id
from services.kit.auth import OPTIONAL, REQUIRED, Caller, forbidden
from services.kit.counts import degraded_headers
from services.kit.errors import ApiError, field_error, not_found
from services.kit.keys import DB_POOL, ENGAGEMENT_COUNTS, SETTINGS

from . import store
from .compose import compose
from .models import CodePath, Post, PostIn, PostPage, PostQuery, PostWithCounts

api = Api(
    "posts",
    title="Agora posts",
    description="Posts of the social network: compose (mentions, hashtags, short links),"
    " read, delete; /s/{code} redirects a short link.",
)


@api.post(
    "/api/v1/posts",
    summary="Compose a post",
    body=PostIn,
    response=Post,
    status=201,
    errors=[401, 422, 502, 503, 504],
    auth=REQUIRED,
)
async def create_post(request: web.Request, caller: Caller, body: PostIn) -> web.Response:
    """Every http(s) URL in the text is replaced by a short link, `@username`s that name
    users become mentions (others stay text), `#hashtags` are collected. `reply_to`
    must name a post (422 otherwise)."""
    post = await compose(request.app, caller, body)
    return created(post, f"/api/v1/posts/{post['id']}")


@api.get(
    "/api/v1/posts",
    summary="A batch of posts, or a set of authors' posts",
    query=PostQuery,
    response=PostPage,
    errors=[422],
)
async def list_posts(request: web.Request, query: PostQuery) -> web.Response:
    """Exactly one of `ids` (these posts, in the order asked, missing or deleted ones left
    out; `next` is null) or `author_ids` (their posts older than `before`, newest first,
    `limit` of them; `next` is the `before` of the next page, null after the last)."""
    db = request.app[DB_POOL]
    if (query.ids is None) == (query.author_ids is None):
        # A rule between parameters, which the document cannot state: a 422, as the
        # domain's rules are (a 400 is for what the document says).
        raise ApiError(
            422,
            "Give ids or author_ids (one of them)",
            details=[field_error("ids", "give ids or author_ids, not both", "exclusive", "query")],
        )
    if query.ids is not None:
        return json_response({"items": await store.by_ids(db, query.ids), "next": None})
    items = await store.by_authors(db, query.author_ids, query.before, query.limit)
    more = len(items) == query.limit
    return json_response({"items": items, "next": str(items[-1]["id"]) if more else None})


@api.get(
    "/api/v1/posts/{id}",
    summary="Get a post, with its likes and comments",
    response=PostWithCounts,
    errors=[404],
    auth=OPTIONAL,
)
async def get_post(request: web.Request, caller: Caller | None) -> web.Response:
    """With `like_count`, `comment_count` and (with a token) `liked_by_me` from
    engagement; null, with the header Agora-Degraded: counts, when engagement fails."""
    post_id = path_id(request)
    post = await store.get(request.app[DB_POOL], post_id)
    if post is None:
        raise not_found("Post", post_id)
    counts, ok = await request.app[ENGAGEMENT_COUNTS].of(
        [post_id], caller.id if caller else None, request.headers.get("Authorization")
    )
    return json_response({**post, **counts[post_id]}, headers=degraded_headers(ok))


@api.delete(
    "/api/v1/posts/{id}",
    summary="Delete a post (its author only)",
    status=204,
    errors=[401, 403, 404],
    auth=REQUIRED,
)
async def delete_post(request: web.Request, caller: Caller) -> web.Response:
    """Its short links stop working; timelines drop it (post.deleted)."""
    post_id = path_id(request)
    app = request.app
    author = await store.delete(app[DB_POOL], app[SETTINGS].events_stream, post_id, caller.id)
    if author is None:
        raise not_found("Post", post_id)
    if author != caller.id:
        raise forbidden(f"Post {post_id} belongs to another user")
    return no_content()


@api.get(
    "/s/{code}",
    summary="Follow a short link",
    path_params=CodePath,
    status=302,
    errors=[404],
)
async def follow_link(request: web.Request, path_params: CodePath) -> web.Response:
    """302 to the original URL (not 301: browsers keep a 301 for ever, and a deleted
    post's links must stop working)."""
    url = await store.link_target(request.app[DB_POOL], path_params.code)
    if url is None:
        raise not_found("Short link", path_params.code)
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})

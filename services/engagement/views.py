"""HTTP handlers of engagement: likes, comments and the batch of counts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.kit.api import Api, created, json_response, no_content, path_id
from services.kit.auth import OPTIONAL, REQUIRED, Caller, forbidden
from services.kit.errors import ApiError, not_found
from services.kit.keys import DB_POOL, HTTP_CLIENT, SETTINGS
from services.kit.mentions import resolve_mentions

from . import store
from .models import (
    Comment,
    CommentIn,
    CommentPage,
    CommentQuery,
    CountsPage,
    CountsQuery,
    LikerPage,
    Likes,
    PageQuery,
)

api = Api(
    "engagement",
    title="Agora engagement",
    description="Likes and comments on posts, and their counts (docs/social.md, Engagement).",
)


async def existing_post(app: web.Application, post_id: int) -> dict[str, Any]:
    """{author_id, deleted: False} of a post that exists; 404 if it does not or was
    deleted. Posts seen in posts.events are known here; any other is asked of posts once."""
    db = app[DB_POOL]
    state = await store.post_state(db, post_id)
    if state is None:
        answer = await app[HTTP_CLIENT].get("posts", f"/api/v1/posts/{post_id}")
        if answer.status == 404:
            raise not_found("Post", post_id)
        if answer.status != 200:
            raise ApiError(502, f"posts answered {answer.status}", code="bad_gateway")
        author_id = answer.json()["author"]["id"]
        await store.remember_post(db, post_id, author_id)
        state = {"author_id": author_id, "deleted": False}
    if state["deleted"]:
        raise not_found("Post", post_id)
    return state


def _next(items: list[dict[str, Any]], limit: int, key: str = "id") -> str | None:
    return str(items[-1][key]) if len(items) == limit else None


POST_ERRORS = [404, 502, 503]


@api.put(
    "/api/v1/likes/{post_id}",
    summary="Like a post (idempotent)",
    status=204,
    errors=POST_ERRORS,
    auth=REQUIRED,
)
async def like(request: web.Request, caller: Caller) -> web.Response:
    post_id = path_id(request, "post_id")
    app = request.app
    await existing_post(app, post_id)
    try:
        await store.like(
            app[DB_POOL], app[SETTINGS].events_stream, post_id, caller.id, caller.username
        )
    except store.PostGone:
        raise not_found("Post", post_id) from None
    return no_content()


@api.delete(
    "/api/v1/likes/{post_id}",
    summary="Take a like back (idempotent)",
    status=204,
    errors=POST_ERRORS,
    auth=REQUIRED,
)
async def unlike(request: web.Request, caller: Caller) -> web.Response:
    post_id = path_id(request, "post_id")
    app = request.app
    await existing_post(app, post_id)
    try:
        await store.unlike(app[DB_POOL], app[SETTINGS].events_stream, post_id, caller.id)
    except store.PostGone:
        raise not_found("Post", post_id) from None
    return no_content()


@api.get(
    "/api/v1/likes/{post_id}",
    summary="A post's likes: how many, and whether you liked it (with a token)",
    response=Likes,
    errors=POST_ERRORS,
    auth=OPTIONAL,
)
async def get_likes(request: web.Request, caller: Caller | None) -> web.Response:
    post_id = path_id(request, "post_id")
    await existing_post(request.app, post_id)
    likes = await store.likes_of(request.app[DB_POOL], post_id, caller.id if caller else None)
    return json_response(likes)


@api.get(
    "/api/v1/likes/{post_id}/users",
    summary="Who liked a post, newest first",
    query=PageQuery,
    response=LikerPage,
    errors=POST_ERRORS,
)
async def get_likers(request: web.Request, query: PageQuery) -> web.Response:
    post_id = path_id(request, "post_id")
    await existing_post(request.app, post_id)
    items = await store.likers(request.app[DB_POOL], post_id, query.cursor, query.limit)
    next_cursor = _next(items, query.limit, "_key")
    for item in items:
        del item["_key"]
    return json_response({"items": items, "next": next_cursor})


@api.post(
    "/api/v1/comments",
    summary="Comment on a post",
    body=CommentIn,
    response=Comment,
    status=201,
    errors=POST_ERRORS,
    auth=REQUIRED,
)
async def add_comment(request: web.Request, caller: Caller, body: CommentIn) -> web.Response:
    """The text's @mentions are resolved by users, as in posts."""
    app = request.app
    await existing_post(app, body.post_id)
    mentions = await resolve_mentions(app[HTTP_CLIENT], [body.text])
    try:
        comment = await store.add_comment(
            app[DB_POOL],
            app[SETTINGS].events_stream,
            post_id=body.post_id,
            author_id=caller.id,
            author_username=caller.username,
            text=body.text,
            mentions=mentions,
        )
    except store.PostGone:
        raise not_found("Post", body.post_id) from None
    return created(comment, f"/api/v1/comments/{comment['id']}")


@api.get(
    "/api/v1/comments",
    summary="A post's comments, oldest first",
    query=CommentQuery,
    response=CommentPage,
    errors=POST_ERRORS,
)
async def list_comments(request: web.Request, query: CommentQuery) -> web.Response:
    """Paged by cursor (the last comment id of the page, in `next`), not offset: a thread
    is read while it grows and while comments are deleted, and a keyset page neither skips
    nor repeats a comment when that happens; it also costs the same at any depth."""
    await existing_post(request.app, query.post_id)
    items = await store.thread(request.app[DB_POOL], query.post_id, query.cursor, query.limit)
    return json_response({"items": items, "next": _next(items, query.limit)})


async def _comment(request: web.Request) -> dict[str, Any]:
    comment_id = path_id(request)
    comment = await store.get_comment(request.app[DB_POOL], comment_id)
    if comment is None:
        raise not_found("Comment", comment_id)
    return comment


@api.get("/api/v1/comments/{id}", summary="Get a comment", response=Comment, errors=[404])
async def get_comment(request: web.Request) -> web.Response:
    comment = await _comment(request)
    del comment["post_author_id"]
    return json_response(comment)


@api.delete(
    "/api/v1/comments/{id}",
    summary="Delete a comment (its author or the post's author)",
    status=204,
    errors=[403, 404],
    auth=REQUIRED,
)
async def delete_comment(request: web.Request, caller: Caller) -> web.Response:
    comment = await _comment(request)
    if caller.id not in (comment["author"]["id"], comment["post_author_id"]):
        raise forbidden(f"Comment {comment['id']} is not yours, nor on your post")
    try:
        await store.delete_comment(
            request.app[DB_POOL], request.app[SETTINGS].events_stream, comment
        )
    except store.PostGone:
        raise not_found("Comment", comment["id"]) from None
    return no_content()


@api.get(
    "/api/v1/engagement/counts",
    summary="Likes and comments of up to 100 posts at once",
    query=CountsQuery,
    response=CountsPage,
    auth=OPTIONAL,
)
async def counts(request: web.Request, query: CountsQuery, caller: Caller | None) -> web.Response:
    """One item per post asked, in order; `liked_by_me` with a token. A post engagement
    does not know (or that was deleted) has 0 of each: one query, no call to posts."""
    items = await store.counts(request.app[DB_POOL], query.post_ids, caller.id if caller else None)
    return json_response({"items": items, "next": None})

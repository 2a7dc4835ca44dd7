"""HTTP handlers of graph: follow, unfollow, counts, followers and followees."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, json_response, no_content, path_id
from services.kit.auth import REQUIRED, Caller
from services.kit.errors import ApiError, field_error
from services.kit.http_client import HttpClient
from services.kit.keys import DB_POOL, HTTP_CLIENT, SETTINGS

from . import store
from .models import Counts, EdgePage, EdgeQuery, FollowingQuery, Ids, IdsQuery

api = Api(
    "graph",
    title="Agora graph",
    description="Who follows whom: follow, unfollow, followers, followees, counts.",
)


async def ensure_user(client: HttpClient, user_id: int) -> None:
    """404 unless users knows the user."""
    response = await client.get("users", f"/api/v1/users/{user_id}")
    if response.status == 404:
        raise ApiError(
            404,
            f"User {user_id} does not exist",
            details=[field_error("user_id", "no such user", "not_found", "path")],
        )
    if response.status != 200:
        raise ApiError(502, f"users answered {response.status} unexpectedly")


@api.put(
    "/api/v1/graph/following/{user_id}",
    summary="Follow a user (idempotent)",
    status=204,
    errors=[401, 404, 502, 503, 504],
    auth=REQUIRED,
)
async def follow(request: web.Request, caller: Caller) -> web.Response:
    """Following yourself is a 400, an unknown user a 404; following again changes
    nothing (and publishes no event)."""
    user_id = path_id(request, "user_id")
    if user_id == caller.id:
        raise ApiError(
            400,
            "You cannot follow yourself",
            code="validation_error",
            details=[field_error("user_id", "is the caller's own id", "self_follow", "path")],
        )
    app = request.app
    await ensure_user(app[HTTP_CLIENT], user_id)
    await store.follow(app[DB_POOL], app[SETTINGS].events_stream, caller.id, user_id)
    return no_content()


@api.delete(
    "/api/v1/graph/following/{user_id}",
    summary="Unfollow a user (idempotent)",
    status=204,
    errors=[401],
    auth=REQUIRED,
)
async def unfollow(request: web.Request, caller: Caller) -> web.Response:
    user_id = path_id(request, "user_id")
    app = request.app
    await store.unfollow(app[DB_POOL], app[SETTINGS].events_stream, caller.id, user_id)
    return no_content()


@api.get(
    "/api/v1/graph/{user_id}", summary="A user's follower and followee counts", response=Counts
)
async def counts(request: web.Request) -> web.Response:
    """A user nobody follows and who follows nobody has zeros (users is not asked)."""
    return json_response(await store.counts(request.app[DB_POOL], path_id(request, "user_id")))


@api.get(
    "/api/v1/graph/{user_id}/followers",
    summary="A user's followers, newest first",
    query=EdgeQuery,
    response=EdgePage,
)
async def followers(request: web.Request, query: EdgeQuery) -> web.Response:
    cursor = int(query.cursor) if query.cursor else None
    user_id = path_id(request, "user_id")
    return json_response(await store.followers(request.app[DB_POOL], user_id, cursor, query.limit))


@api.get(
    "/api/v1/graph/{user_id}/following",
    summary="Whom a user follows, newest first",
    query=FollowingQuery,
    response=EdgePage,
)
async def following(request: web.Request, query: FollowingQuery) -> web.Response:
    """`min_followers`: only followees with at least that many followers (the big
    accounts whose posts timelines merge at read time)."""
    cursor = int(query.cursor) if query.cursor else None
    user_id = path_id(request, "user_id")
    page = await store.following(
        request.app[DB_POOL], user_id, cursor, query.limit, query.min_followers
    )
    return json_response(page)


@api.get(
    "/api/v1/graph/{user_id}/following/ids",
    summary="The ids of everyone a user follows",
    query=IdsQuery,
    response=Ids,
)
async def following_ids(request: web.Request, query: IdsQuery) -> web.Response:
    user_id = path_id(request, "user_id")
    ids = await store.following_ids(request.app[DB_POOL], user_id, query.limit)
    return json_response({"ids": ids})

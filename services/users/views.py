"""HTTP handlers of users."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, Page, PageQuery, created, json_response, page, path_id
from services.kit.caching import PRIVATE_REVALIDATE
from services.kit.errors import not_found
from services.kit.keys import DB_POOL

from . import store
from .models import ADULT_AGE, User, UserIn, UserQuery

api = Api("users", title="Agora users", description="Users, and which of them are adults.")


@api.get("/api/v1/users", summary="List users", query=UserQuery, response=Page[User])
async def list_users(request: web.Request, query: UserQuery) -> web.Response:
    items, total = await store.list_users(
        request.app[DB_POOL], query.limit, query.offset, query.min_age
    )
    return page(items, total)


@api.get(
    "/api/v1/users/adults",
    summary=f"List users aged {ADULT_AGE} or more",
    query=PageQuery,
    response=Page[User],
)
async def list_adults(request: web.Request, query: PageQuery) -> web.Response:
    items, total = await store.list_users(
        request.app[DB_POOL], query.limit, query.offset, ADULT_AGE
    )
    return page(items, total)


@api.get(
    "/api/v1/users/{id}",
    summary="Get a user",
    response=User,
    errors=[404],
    cache=PRIVATE_REVALIDATE,
)
async def get_user(request: web.Request) -> web.Response:
    user_id = path_id(request)
    user = await store.get_user(request.app[DB_POOL], user_id)
    if user is None:
        raise not_found("User", user_id)
    return json_response(user)


@api.post(
    "/api/v1/users", summary="Create a user", body=UserIn, response=User, status=201, errors=[409]
)
async def create_user(request: web.Request, body: UserIn) -> web.Response:
    user = await store.create_user(request.app[DB_POOL], body.name, body.age, body.email)
    return created(user, f"/api/v1/users/{user['id']}")

"""HTTP handlers of timelines: a signed-in user's home timeline, anyone's user timeline."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, path_id
from services.kit.auth import REQUIRED, Caller

from .keys import READER
from .models import TimelinePage, TimelineQuery
from .reads import Page

api = Api(
    "timelines",
    title="Agora timelines",
    description=(
        "Home timelines (the posts of the people you follow, and your own) and user"
        " timelines, newest first, paged by a post-id cursor."
    ),
)
UPSTREAM_ERRORS = [502, 503, 504]


def answer(page: Page) -> web.Response:
    return web.Response(body=page.body(), content_type="application/json")


@api.get(
    "/api/v1/timelines/home",
    summary="Your home timeline",
    query=TimelineQuery,
    response=TimelinePage,
    errors=UPSTREAM_ERRORS,
    auth=REQUIRED,
)
async def home_timeline(request: web.Request, caller: Caller, query: TimelineQuery) -> web.Response:
    """The posts of the people you follow and your own, newest first. Posts reach
    followers' timelines moments after they are posted (fan-out through events); yours
    and big accounts' are merged in at read time."""
    return answer(await request.app[READER].home(caller.id, query.before, query.limit))


@api.get(
    "/api/v1/timelines/users/{user_id}",
    summary="A user's timeline",
    query=TimelineQuery,
    response=TimelinePage,
    errors=[400, *UPSTREAM_ERRORS],
)
async def user_timeline(request: web.Request, query: TimelineQuery) -> web.Response:
    """One user's posts, newest first (an unknown user has none)."""
    user_id = path_id(request, "user_id")
    return answer(await request.app[READER].user(user_id, query.before, query.limit))

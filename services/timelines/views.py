"""HTTP handlers of timelines: a signed-in user's home timeline, anyone's user timeline."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, path_id
from services.kit.auth import OPTIONAL, REQUIRED, Caller
from services.kit.counts import degraded_headers
from services.kit.keys import ENGAGEMENT_COUNTS

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


async def answer(
    request: web.Request, page: Page, query: TimelineQuery, caller: Caller | None
) -> web.Response:
    """The page, each post with its likes and comments unless the query said not to (one
    batch call to engagement, cached briefly; without them when engagement fails, with
    the header Agora-Degraded: counts)."""
    headers: dict[str, str] = {}
    if query.counts and page.ids:
        counts, ok = await request.app[ENGAGEMENT_COUNTS].of(
            page.ids, caller.id if caller else None, request.headers.get("Authorization")
        )
        page = page.with_counts(counts)
        headers = degraded_headers(ok)
    return web.Response(body=page.body(), content_type="application/json", headers=headers)


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
    page = await request.app[READER].home(caller.id, query.before, query.limit)
    return await answer(request, page, query, caller)


@api.get(
    "/api/v1/timelines/users/{user_id}",
    summary="A user's timeline",
    query=TimelineQuery,
    response=TimelinePage,
    errors=[400, *UPSTREAM_ERRORS],
    auth=OPTIONAL,
)
async def user_timeline(
    request: web.Request, query: TimelineQuery, caller: Caller | None
) -> web.Response:
    """One user's posts, newest first (an unknown user has none)."""
    user_id = path_id(request, "user_id")
    page = await request.app[READER].user(user_id, query.before, query.limit)
    return await answer(request, page, query, caller)

"""HTTP handlers of facts."""

from __future__ import annotations

import logging

from aiohttp import web

from services.kit.api import Api, json_response
from services.kit.errors import ApiError
from services.kit.keys import HTTP_CLIENT

from .fetch import Limits, fetch_facts
from .models import AmountQuery, CatFacts

log = logging.getLogger("agora.facts")

api = Api(
    "facts",
    title="Agora facts",
    description="Cat facts fetched concurrently from a catfact.ninja-compatible upstream.",
)

LIMITS = web.AppKey("fetch_limits", Limits)


@api.get(
    "/api/v1/cats",
    summary="N cat facts (?amount=N)",
    query=AmountQuery,
    response=CatFacts,
    errors=[502],
)
async def cats(request: web.Request, query: AmountQuery) -> web.Response:
    return await answer(request, query.amount)


@api.get(
    "/api/v1/cats/{amount}",
    summary="N cat facts",
    path_params=AmountQuery,
    response=CatFacts,
    errors=[502],
)
async def cats_by_path(request: web.Request, path_params: AmountQuery) -> web.Response:
    return await answer(request, path_params.amount)


async def answer(request: web.Request, amount: int) -> web.Response:
    fetched = await fetch_facts(request.app[HTTP_CLIENT], amount, request.app[LIMITS])
    if not fetched.facts:
        raise ApiError(502, f"The cat-fact upstream gave no usable fact in {fetched.calls} calls")
    missing = amount - len(fetched.facts)
    if missing:
        log.warning(
            "%d of %d facts missing: %d calls, %d failed, %d duplicates",
            missing,
            amount,
            fetched.calls,
            fetched.failed,
            fetched.duplicates,
        )
    return json_response(
        {
            "facts": fetched.facts,
            "requested": amount,
            "returned": len(fetched.facts),
            "missing": missing,
            "upstream_calls": fetched.calls,
            "failed_calls": fetched.failed,
            "duplicates": fetched.duplicates,
        }
    )

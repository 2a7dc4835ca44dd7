"""factsource's handlers: catfact.ninja's GET /fact and GET /facts over the bundled facts."""

from __future__ import annotations

import math
import random
from asyncio import sleep

from aiohttp import web

from services.kit.api import Api, json_response
from services.kit.errors import ApiError

from .bundled import facts_up_to
from .models import Fact, FactQuery, FactsPage, FactsQuery

api = Api(
    "factsource",
    title="Agora factsource",
    description="A catfact.ninja-compatible source of bundled cat facts, for clusters and "
    "tests without internet.",
)

# Seconds every answer waits first: a stand-in for a remote API's latency (benchmarks).
LATENCY = web.AppKey("artificial_latency", float)


def as_fact(text: str) -> dict[str, object]:
    return {"fact": text, "length": len(text)}


async def artificial_latency(request: web.Request) -> None:
    if pause := request.app[LATENCY]:
        await sleep(pause)


@api.get("/fact", summary="A random cat fact", query=FactQuery, response=Fact, errors=[404])
async def random_fact(request: web.Request, query: FactQuery) -> web.Response:
    await artificial_latency(request)
    candidates = facts_up_to(query.max_length)
    if not candidates:
        raise ApiError(404, f"No fact is at most {query.max_length} characters long")
    return json_response(as_fact(random.choice(candidates)))


@api.get("/facts", summary="A page of cat facts", query=FactsQuery, response=FactsPage)
async def list_facts(request: web.Request, query: FactsQuery) -> web.Response:
    await artificial_latency(request)
    facts = facts_up_to(query.max_length)
    total, limit, number = len(facts), query.limit, query.page
    last_page = max(1, math.ceil(total / limit))
    start = (number - 1) * limit
    data = [as_fact(text) for text in facts[start : start + limit]]

    def page_url(page: int) -> str:
        return str(request.url.update_query(page=page))

    return json_response(
        {
            "current_page": number,
            "data": data,
            "first_page_url": page_url(1),
            "from": start + 1 if data else None,
            "last_page": last_page,
            "last_page_url": page_url(last_page),
            "next_page_url": page_url(number + 1) if number < last_page else None,
            "path": str(request.url.with_query(None)),
            "per_page": limit,
            "prev_page_url": page_url(number - 1) if number > 1 else None,
            "to": start + len(data) if data else None,
            "total": total,
        }
    )

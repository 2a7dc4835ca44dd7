"""HTTP handlers of factcheck."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, json_response

from .models import FactsIn, FactsOut
from .rule import keep_cat_facts

api = Api(
    "factcheck",
    title="Agora factcheck",
    description='Keeps the facts that contain the word "cat" or "cats", in any case.',
)


@api.post("/api/v1/facts", summary="Keep the facts about cats", body=FactsIn, response=FactsOut)
async def check_facts(request: web.Request, body: FactsIn) -> web.Response:
    return json_response({"facts": keep_cat_facts(body.facts)})

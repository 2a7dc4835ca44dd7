"""HTTP handlers of pipeline: a graph given by the caller, or a ready-made one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.kit.api import Api, json_response

from . import flows
from .dag import RunResult, Step
from .models import CatsOut, CatsQuery, RunIn, RunOut, StatsIn, StatsOut
from .runner import RUNNER

api = Api(
    "pipeline",
    title="Agora pipeline",
    description="Runs graphs of calls to calc, facts and factcheck: every step as soon "
    "as the steps it references are done.",
)
UPSTREAM_ERRORS = [502, 503, 504]


def run_answer(graph: dict[str, Step], result: RunResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "total_ms": result.total_ms,
        "steps": {
            name: {"op": graph[name].op, **vars(step)} for name, step in result.steps.items()
        },
    }


@api.post(
    "/api/v1/pipeline/runs",
    summary="Run a graph of steps; answers each step's output or error and its times",
    body=RunIn,
    response=RunOut,
    errors=[413, 422],
)
async def create_run(request: web.Request, body: RunIn) -> web.Response:
    graph = {
        name: Step(step.op, step.input, step.timeout_ms / 1000 if step.timeout_ms else None)
        for name, step in body.steps.items()
    }
    result = await request.app[RUNNER].run(
        graph, body.input, timeout_ms=body.timeout_ms, max_concurrency=body.max_concurrency
    )
    return json_response(run_answer(graph, result))


@api.post(
    "/api/v1/pipeline/stats",
    summary="sum and product, then quotient; squares and roots, then their total",
    body=StatsIn,
    response=StatsOut,
    errors=[413, 422, *UPSTREAM_ERRORS],
)
async def stats(request: web.Request, body: StatsIn) -> web.Response:
    result = await request.app[RUNNER].run(flows.STATS, {"numbers": body.numbers})
    return json_response(flows.stats_answer(result))


@api.get(
    "/api/v1/pipeline/cats",
    summary="N cat facts from facts, kept only if factcheck agrees they are about cats",
    query=CatsQuery,
    response=CatsOut,
    errors=UPSTREAM_ERRORS,
)
async def cats(request: web.Request, query: CatsQuery) -> web.Response:
    result = await request.app[RUNNER].run(flows.CATS, {"amount": query.amount})
    return json_response(flows.cats_answer(result))

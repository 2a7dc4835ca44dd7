"""HTTP handlers of calc: thin, over the functions in arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from services.kit.api import Api, Handler, json_response

from . import arithmetic
from .models import (
    NumbersIn,
    ProductOut,
    QuotientIn,
    QuotientOut,
    RatiosIn,
    RatiosOut,
    RootsIn,
    RootsOut,
    SquaresOut,
    SumOut,
)

api = Api(
    "calc",
    title="Agora calc",
    description="Arithmetic on lists of numbers: exact on integers, bounded in size.",
)
TOO_BIG = [413, 422]

# The operations that take {"numbers": [...]} and answer {name: result}.
ON_NUMBERS: dict[
    str, tuple[str, Callable[[Sequence[Any]], Any], type[NumbersIn | RootsIn], type[BaseModel]]
] = {
    "sum": ("Sum", arithmetic.total, NumbersIn, SumOut),
    "product": ("Product", arithmetic.product, NumbersIn, ProductOut),
    "squares": ("Square of each number", arithmetic.squares, NumbersIn, SquaresOut),
    "roots": (
        "Square root of each number (a negative one is a 400 naming its index)",
        arithmetic.roots,
        RootsIn,
        RootsOut,
    ),
}


def _on_numbers(name: str, compute: Callable[[Sequence[Any]], Any]) -> Handler:
    async def handler(request: web.Request, body: NumbersIn | RootsIn) -> web.Response:
        return json_response({name: compute(body.numbers)})

    handler.__name__ = f"calc_{name}"  # the OpenAPI operationId
    return handler


for _name, (_summary, _compute, _body, _response) in ON_NUMBERS.items():
    api.post(
        f"/api/v1/calc/{_name}",
        summary=_summary,
        body=_body,
        response=_response,
        errors=TOO_BIG,
    )(_on_numbers(_name, _compute))


@api.post(
    "/api/v1/calc/ratios",
    summary="Each number divided by sum, optionally rounded",
    body=RatiosIn,
    response=RatiosOut,
    errors=TOO_BIG,
)
async def calc_ratios(request: web.Request, body: RatiosIn) -> web.Response:
    return json_response({"ratios": arithmetic.ratios(body.numbers, body.sum, body.round)})


@api.post(
    "/api/v1/calc/quotient",
    summary="product / sum: exact when integers divide evenly",
    body=QuotientIn,
    response=QuotientOut,
    errors=[422],
)
async def calc_quotient(request: web.Request, body: QuotientIn) -> web.Response:
    return json_response({"quotient": arithmetic.quotient(body.product, body.sum)})

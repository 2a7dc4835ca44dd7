"""HTTP handlers of calc: thin, over the functions in arithmetic."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, json_response

from . import arithmetic
from .models import (
    NumbersIn,
    ProductOut,
    QuotientIn,
    QuotientOut,
    RatiosIn,
    RatiosOut,
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


@api.post("/api/v1/calc/sum", summary="Sum", body=NumbersIn, response=SumOut, errors=TOO_BIG)
async def calc_sum(request: web.Request, body: NumbersIn) -> web.Response:
    return json_response({"sum": arithmetic.total(body.numbers)})


@api.post(
    "/api/v1/calc/product", summary="Product", body=NumbersIn, response=ProductOut, errors=TOO_BIG
)
async def calc_product(request: web.Request, body: NumbersIn) -> web.Response:
    return json_response({"product": arithmetic.product(body.numbers)})


@api.post(
    "/api/v1/calc/squares",
    summary="Square of each number",
    body=NumbersIn,
    response=SquaresOut,
    errors=TOO_BIG,
)
async def calc_squares(request: web.Request, body: NumbersIn) -> web.Response:
    return json_response({"squares": arithmetic.squares(body.numbers)})


@api.post(
    "/api/v1/calc/roots",
    summary="Square root of each number (a negative one is a 400 naming its index)",
    body=NumbersIn,
    response=RootsOut,
    errors=TOO_BIG,
)
async def calc_roots(request: web.Request, body: NumbersIn) -> web.Response:
    return json_response({"roots": arithmetic.roots(body.numbers)})


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

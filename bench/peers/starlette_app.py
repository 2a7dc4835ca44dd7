"""Starlette + asyncpg, served by uvicorn (httptools, uvloop) workers under gunicorn.

    gunicorn -c bench/peers/gunicorn.conf.py -k uvicorn_worker.UvicornWorker \
        bench.peers.starlette_app:app

Starlette's JSONResponse uses the standard library's json, which writes neither Decimal
nor datetime; the usual answer is an orjson-rendered Response, as here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import common

PREFIX = "/bench/starlette"
JSON = "application/json"


async def get_product(request: Request) -> Response:
    try:
        product_id = int(request.path_params["id"])
    except ValueError:
        return Response(common.bad_id_body(), status_code=400, media_type=JSON)
    row = await request.app.state.pool.fetchrow(common.GET_PRODUCT, product_id)
    if row is None:
        return Response(common.not_found_body(product_id), status_code=404, media_type=JSON)
    return Response(common.dumps(dict(row)), media_type=JSON)


async def list_products(request: Request) -> Response:
    limit = int(request.query_params.get("limit", common.DEFAULT_LIMIT))
    offset = int(request.query_params.get("offset", 0))
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(common.LIST_PAGE, None, limit, offset)
        total = await conn.fetchval(common.LIST_TOTAL, None)
    body = common.dumps({"items": [dict(row) for row in rows], "total": total})
    return Response(body, media_type=JSON)


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await common.create_pool()
    yield
    await app.state.pool.close()


app = Starlette(
    routes=[
        Route(f"{PREFIX}/api/v1/products/{{id}}", get_product),
        Route(f"{PREFIX}/api/v1/products", list_products),
        Route("/healthz", ok),
        Route("/readyz", ok),
    ],
    lifespan=lifespan,
)

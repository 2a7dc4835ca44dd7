"""Bare aiohttp + asyncpg: an Application, a pool in cleanup_ctx, two handlers.

    gunicorn -c bench/peers/gunicorn.conf.py -k aiohttp.GunicornUVLoopWebWorker \
        bench.peers.aiohttp_app:app
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from . import common

PREFIX = "/bench/aiohttp"
POOL = web.AppKey("pool", asyncpg.Pool)


async def get_product(request: web.Request) -> web.Response:
    try:
        product_id = int(request.match_info["id"])
    except ValueError:
        return web.Response(status=400, body=common.bad_id_body(), content_type="application/json")
    row = await request.app[POOL].fetchrow(common.GET_PRODUCT, product_id)
    if row is None:
        return web.Response(
            status=404, body=common.not_found_body(product_id), content_type="application/json"
        )
    return web.Response(body=common.dumps(dict(row)), content_type="application/json")


async def list_products(request: web.Request) -> web.Response:
    limit = int(request.query.get("limit", common.DEFAULT_LIMIT))
    offset = int(request.query.get("offset", 0))
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(common.LIST_PAGE, None, limit, offset)
        total = await conn.fetchval(common.LIST_TOTAL, None)
    body = common.dumps({"items": [dict(row) for row in rows], "total": total})
    return web.Response(body=body, content_type="application/json")


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    app[POOL] = await common.create_pool()
    yield
    await app[POOL].close()


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get(f"{PREFIX}/api/v1/products/{{id}}", get_product)
    app.router.add_get(f"{PREFIX}/api/v1/products", list_products)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    app.cleanup_ctx.append(pool_ctx)
    return app


app = create_app()

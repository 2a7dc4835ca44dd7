"""FastAPI + asyncpg, the way its documentation writes it: response models, a typed path
parameter, HTTPException for the 404; served by uvicorn workers under gunicorn.

    gunicorn -c bench/peers/gunicorn.conf.py -k uvicorn_worker.UvicornWorker \
        bench.peers.fastapi_app:app

FastAPI serialises through the response model with pydantic, which writes a UTC
datetime with "Z"; the serializer below keeps catalog's "+00:00".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, PlainSerializer

from . import common

PREFIX = "/bench/fastapi"
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str)]


class Product(BaseModel):
    id: int
    name: str
    price: Decimal
    quantity: int
    brand_id: int | None
    created_at: Timestamp
    updated_at: Timestamp


class ProductPage(BaseModel):
    items: list[Product]
    total: int


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await common.create_pool()
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.exception_handler(HTTPException)
async def error_shape(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse(
        {"error": exc.detail, "code": "not_found", "details": []}, status_code=exc.status_code
    )


@app.get(f"{PREFIX}/api/v1/products/{{product_id}}", response_model=Product)
async def get_product(product_id: int, request: Request) -> dict:
    row = await request.app.state.pool.fetchrow(common.GET_PRODUCT, product_id)
    if row is None:
        raise HTTPException(404, f"Product {product_id} does not exist")
    return dict(row)


@app.get(f"{PREFIX}/api/v1/products", response_model=ProductPage)
async def list_products(
    request: Request, limit: int = common.DEFAULT_LIMIT, offset: int = 0
) -> dict:
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(common.LIST_PAGE, None, limit, offset)
        total = await conn.fetchval(common.LIST_TOTAL, None)
    return {"items": [dict(row) for row in rows], "total": total}


@app.get("/healthz", response_class=PlainTextResponse)
@app.get("/readyz", response_class=PlainTextResponse)
async def ok() -> str:
    return "ok"

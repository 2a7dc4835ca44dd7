"""HTTP handlers of orders: thin, over lifecycle (the placing rules) and store (SQL)."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, Page, created, json_response, page, path_id
from services.kit.caching import PRIVATE_REVALIDATE
from services.kit.errors import not_found
from services.kit.headers import header_value
from services.kit.keys import DB_POOL

from . import lifecycle, store
from .models import Order, OrderIn, OrderQuery

api = Api(
    "orders",
    title="Agora orders",
    description="Orders of catalog's products: all or nothing, idempotent, never oversold.",
)

IDEMPOTENCY_HEADER = "Idempotency-Key"


@api.post(
    "/api/v1/orders",
    summary="Place an order",
    body=OrderIn,
    response=Order,
    status=201,
    errors=[404, 409, 422, 503, 504],
    headers=[
        (
            IDEMPOTENCY_HEADER,
            "the same key with the same body answers the same order (or error) without"
            " placing it twice; with a different body, 422",
        )
    ],
)
async def place_order(request: web.Request, body: OrderIn) -> web.Response:
    """All items or none: a missing product is a 404, short stock a 409 naming the
    product, and every reservation already made is released."""
    key = header_value(request, IDEMPOTENCY_HEADER)
    order, replayed = await lifecycle.place(request.app, body, key)
    response = created(store.public(order), f"/api/v1/orders/{order['id']}")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@api.get("/api/v1/orders", summary="List orders", query=OrderQuery, response=Page[Order])
async def list_orders(request: web.Request, query: OrderQuery) -> web.Response:
    orders, total = await store.list_visible(
        request.app[DB_POOL], query.limit, query.offset, query.user_id
    )
    return page([store.public(order) for order in orders], total)


@api.get(
    "/api/v1/orders/{id}",
    summary="Get an order",
    response=Order,
    errors=[404],
    cache=PRIVATE_REVALIDATE,
)
async def get_order(request: web.Request) -> web.Response:
    order_id = path_id(request)
    order = await store.get(request.app[DB_POOL], order_id)
    if order is None or order["status"] not in ("created", "cancelled"):
        raise not_found("Order", order_id)
    return json_response(store.public(order))


@api.post(
    "/api/v1/orders/{id}/cancel",
    summary="Cancel an order (idempotent)",
    response=Order,
    errors=[404],
)
async def cancel_order(request: web.Request) -> web.Response:
    """Gives the stock back once; cancelling again answers the cancelled order."""
    order = await lifecycle.cancel(request.app, path_id(request))
    return json_response(store.public(order))

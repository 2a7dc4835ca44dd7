"""HTTP handlers of notifications: what the consumer processed."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, Page, page
from services.kit.keys import DB_POOL

from . import store
from .models import Notification, NotificationQuery

api = Api(
    "notifications",
    title="Agora notifications",
    description="Order events consumed from the orders stream, each processed once.",
)


@api.get(
    "/api/v1/notifications",
    summary="List processed notifications",
    query=NotificationQuery,
    response=Page[Notification],
)
async def list_notifications(request: web.Request, query: NotificationQuery) -> web.Response:
    items, total = await store.list_notifications(
        request.app[DB_POOL], query.limit, query.offset, query.order_id
    )
    return page(items, total)

"""HTTP handlers of the catalog: thin, over the functions in store."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, Page, PageQuery, created, json_response, no_content, page, path_id
from services.kit.caching import REVALIDATE
from services.kit.errors import not_found
from services.kit.keys import DB_POOL

from . import store
from .models import (
    Brand,
    BrandIn,
    Product,
    ProductIn,
    ProductPatch,
    ProductQuery,
    Reservation,
    ReservationIn,
    ReservationPath,
)

api = Api("catalog", title="Agora catalog", description="Brands, and products with their stock.")


@api.get("/api/v1/brands", summary="List brands", query=PageQuery, response=Page[Brand])
async def list_brands(request: web.Request, query: PageQuery) -> web.Response:
    items, total = await store.list_brands(request.app[DB_POOL], query.limit, query.offset)
    return page(items, total)


@api.get(
    "/api/v1/brands/{id}", summary="Get a brand", response=Brand, errors=[404], cache=REVALIDATE
)
async def get_brand(request: web.Request) -> web.Response:
    brand_id = path_id(request)
    brand = await store.get_brand(request.app[DB_POOL], brand_id)
    if brand is None:
        raise not_found("Brand", brand_id)
    return json_response(brand)


@api.post(
    "/api/v1/brands",
    summary="Create a brand",
    body=BrandIn,
    response=Brand,
    status=201,
    errors=[409],
)
async def create_brand(request: web.Request, body: BrandIn) -> web.Response:
    brand = await store.create_brand(request.app[DB_POOL], body.name)
    return created(brand, f"/api/v1/brands/{brand['id']}")


@api.get("/api/v1/products", summary="List products", query=ProductQuery, response=Page[Product])
async def list_products(request: web.Request, query: ProductQuery) -> web.Response:
    items, total = await store.list_products(
        request.app[DB_POOL], query.limit, query.offset, query.brand_id
    )
    return page(items, total)


@api.get(
    "/api/v1/products/{id}",
    summary="Get a product",
    response=Product,
    errors=[404],
    cache=REVALIDATE,
)
async def get_product(request: web.Request) -> web.Response:
    product_id = path_id(request)
    product = await store.get_product(request.app[DB_POOL], product_id)
    if product is None:
        raise not_found("Product", product_id)
    return json_response(product)


@api.post(
    "/api/v1/products",
    summary="Create a product",
    body=ProductIn,
    response=Product,
    status=201,
    errors=[422],
)
async def create_product(request: web.Request, body: ProductIn) -> web.Response:
    product = await store.create_product(request.app[DB_POOL], body.model_dump())
    return created(product, f"/api/v1/products/{product['id']}")


@api.put(
    "/api/v1/products/{id}",
    summary="Replace a product",
    body=ProductIn,
    response=Product,
    errors=[404, 422],
)
async def replace_product(request: web.Request, body: ProductIn) -> web.Response:
    return await _update(request, body.model_dump())


@api.patch(
    "/api/v1/products/{id}",
    summary="Change some fields of a product",
    body=ProductPatch,
    response=Product,
    errors=[404, 422],
)
async def patch_product(request: web.Request, body: ProductPatch) -> web.Response:
    return await _update(request, body.changes())


async def _update(request: web.Request, changes: dict[str, object]) -> web.Response:
    product_id = path_id(request)
    product = await store.update_product(request.app[DB_POOL], product_id, changes)
    if product is None:
        raise not_found("Product", product_id)
    return json_response(product)


@api.delete("/api/v1/products/{id}", summary="Delete a product", status=204, errors=[404])
async def delete_product(request: web.Request) -> web.Response:
    product_id = path_id(request)
    if not await store.delete_product(request.app[DB_POOL], product_id):
        raise not_found("Product", product_id)
    return no_content()


# ---------------------------------------------------------------- reservations

RESERVATION_PATH = "/api/v1/products/{id}/reservations/{reservation_id}"


@api.post(
    "/api/v1/products/{id}/reservations",
    summary="Reserve stock (idempotent on reservation_id)",
    body=ReservationIn,
    response=Reservation,
    status=201,
    errors=[404, 409, 422],
)
async def reserve(request: web.Request, body: ReservationIn) -> web.Response:
    """Takes the stock if there is enough (409 otherwise). A repeat of the same
    reservation_id answers what the first one did and takes nothing more."""
    product_id = path_id(request)
    reservation, taken_now = await store.reserve(
        request.app[DB_POOL], product_id, body.reservation_id, body.quantity
    )
    response = created(
        reservation, f"/api/v1/products/{product_id}/reservations/{body.reservation_id}"
    )
    if not taken_now:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@api.get(
    RESERVATION_PATH,
    summary="Get a reservation",
    path_params=ReservationPath,
    response=Reservation,
    errors=[404],
    cache=REVALIDATE,
)
async def get_reservation(request: web.Request, path_params: ReservationPath) -> web.Response:
    product_id, rid = path_id(request), path_params.reservation_id
    reservation = await store.get_reservation(request.app[DB_POOL], product_id, rid)
    if reservation is None:
        raise not_found("Reservation", rid)
    return json_response(reservation)


@api.delete(
    RESERVATION_PATH,
    summary="Release a reservation (idempotent)",
    path_params=ReservationPath,
    response=Reservation,
    errors=[404],
)
async def release(request: web.Request, path_params: ReservationPath) -> web.Response:
    """Gives the stock back once; repeats answer the same. Releasing a reservation that
    was never made records it as released, so it can no longer be made."""
    product_id, rid = path_id(request), path_params.reservation_id
    return json_response(await store.release(request.app[DB_POOL], product_id, rid))

"""The catalog's SQL. Plain functions over an asyncpg pool or connection."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.db import fetch_page
from services.kit.errors import ApiError, conflict, field_error, not_found

Row = dict[str, Any]
PRODUCT_COLUMNS = "id, name, price, quantity, brand_id, created_at, updated_at"
BRAND_COLUMNS = "id, name, created_at"


async def numeric_as_text(conn: asyncpg.Connection) -> None:
    """Prices (NUMERIC) arrive as PostgreSQL's exact text, "5000.00", which is what the
    JSON carries: no Decimal is made per price and none turned back into a string
    (BENCHMARKS.md, peers). A Decimal or int parameter goes out as its text."""
    await conn.set_type_codec(
        "numeric", schema="pg_catalog", encoder=str, decoder=str, format="text"
    )


def missing_brand(brand_id: int | None) -> ApiError:
    return ApiError(
        422,
        f"Brand {brand_id} does not exist",
        details=[field_error("brand_id", "no such brand", "missing")],
    )


# ---------------------------------------------------------------- brands


async def list_brands(db: asyncpg.Pool, limit: int, offset: int) -> tuple[list[Row], int]:
    return await fetch_page(db, BRAND_COLUMNS, "brands", (), limit, offset)


async def get_brand(db: asyncpg.Pool, brand_id: int) -> Row | None:
    row = await db.fetchrow(f"SELECT {BRAND_COLUMNS} FROM brands WHERE id = $1", brand_id)
    return dict(row) if row else None


async def create_brand(db: asyncpg.Pool, name: str) -> Row:
    try:
        row = await db.fetchrow(
            f"INSERT INTO brands (name) VALUES ($1) RETURNING {BRAND_COLUMNS}", name
        )
    except asyncpg.UniqueViolationError:
        raise conflict(f"Brand {name!r} already exists") from None
    return dict(row)


# ---------------------------------------------------------------- products


async def list_products(
    db: asyncpg.Pool, limit: int, offset: int, brand_id: int | None
) -> tuple[list[Row], int]:
    source = "products WHERE ($1::bigint IS NULL OR brand_id = $1)"
    return await fetch_page(db, PRODUCT_COLUMNS, source, (brand_id,), limit, offset)


async def get_product(db: asyncpg.Pool, product_id: int) -> Row | None:
    row = await db.fetchrow(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1", product_id)
    return dict(row) if row else None


async def create_product(db: asyncpg.Pool, fields: Row) -> Row:
    try:
        row = await db.fetchrow(
            "INSERT INTO products (name, price, quantity, brand_id) VALUES ($1, $2, $3, $4)"
            f" RETURNING {PRODUCT_COLUMNS}",
            fields["name"],
            fields["price"],
            fields["quantity"],
            fields.get("brand_id"),
        )
    except asyncpg.ForeignKeyViolationError:
        raise missing_brand(fields.get("brand_id")) from None
    return dict(row)


UPDATABLE = ("name", "price", "quantity", "brand_id")


async def update_product(db: asyncpg.Pool, product_id: int, changes: Row) -> Row | None:
    """Set the given columns (PUT passes them all, PATCH some); None if no such product."""
    names = [name for name in UPDATABLE if name in changes]
    assignments = ", ".join(f"{name} = ${index}" for index, name in enumerate(names, start=2))
    try:
        row = await db.fetchrow(
            f"UPDATE products SET {assignments}, updated_at = now() WHERE id = $1"
            f" RETURNING {PRODUCT_COLUMNS}",
            product_id,
            *(changes[name] for name in names),
        )
    except asyncpg.ForeignKeyViolationError:
        raise missing_brand(changes.get("brand_id")) from None
    return dict(row) if row else None


async def delete_product(db: asyncpg.Pool, product_id: int) -> bool:
    deleted = await db.fetchval("DELETE FROM products WHERE id = $1 RETURNING id", product_id)
    return deleted is not None


# ---------------------------------------------------------------- reservations

RESERVATION_COLUMNS = "id, product_id, quantity, unit_price, status, created_at, released_at"

# One statement takes the stock and records the reservation. The conditional UPDATE locks
# the product row, and PostgreSQL re-checks `quantity >= $3` against the latest version
# after waiting for that lock, so concurrent reservations never oversell.
_RESERVE = f"""
WITH taken AS (
    UPDATE products SET quantity = quantity - $3, updated_at = now()
    WHERE id = $2 AND quantity >= $3
    RETURNING id, price
)
INSERT INTO reservations (id, product_id, quantity, unit_price, status)
SELECT $1, id, $3, price, 'held' FROM taken
ON CONFLICT (id) DO NOTHING
RETURNING {RESERVATION_COLUMNS}
"""


class _NothingTaken(Exception):
    pass


def _reservation_mismatch(reservation: Row) -> ApiError:
    return ApiError(
        422,
        f"Reservation {reservation['id']} was made for product {reservation['product_id']}"
        f" with quantity {reservation['quantity']}",
        details=[
            {
                "field": "reservation_id",
                "location": "body",
                "message": "already used for another product or quantity",
                "type": "reused",
            }
        ],
    )


async def reserve(
    db: asyncpg.Pool, product_id: int, reservation_id: str, quantity: int
) -> tuple[Row, bool]:
    """Take `quantity` of the product's stock under `reservation_id`.

    Returns (reservation, True) when the stock was taken now and (the reservation made
    first, False) for a repeat, which takes nothing. 404 without the product, 409 when
    the stock is short or the reservation was already released, 422 when the id was used
    for something else.
    """
    async with db.acquire() as conn:
        for _ in range(3):
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(_RESERVE, reservation_id, product_id, quantity)
                    if row is None:  # short stock, or a repeat: undo any stock taken
                        raise _NothingTaken
                return dict(row), True
            except _NothingTaken:
                pass
            existing = await conn.fetchrow(
                f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1", reservation_id
            )
            if existing is not None:
                return _repeat(dict(existing), product_id, quantity), False
            product = await conn.fetchrow(
                "SELECT name, quantity FROM products WHERE id = $1", product_id
            )
            if product is None:
                raise not_found("Product", product_id)
            if product["quantity"] < quantity:
                raise insufficient_stock(product_id, product["name"], product["quantity"], quantity)
            # Stock came back between the two statements: try again.
    raise ApiError(503, "The stock changed too often to reserve; try again")


def _repeat(reservation: Row, product_id: int, quantity: int) -> Row:
    if reservation["product_id"] != product_id:
        raise _reservation_mismatch(reservation)
    if reservation["status"] == "released":
        raise conflict(
            f"Reservation {reservation['id']} was released; use a new reservation_id",
            code="reservation_released",
        )
    if reservation["quantity"] != quantity:
        raise _reservation_mismatch(reservation)
    return reservation


def insufficient_stock(product_id: int, name: str, available: int, wanted: int) -> ApiError:
    return conflict(
        f"Product {product_id} ({name}) has {available} in stock; {wanted} requested",
        code="insufficient_stock",
        details=[
            {
                "field": "quantity",
                "location": "body",
                "message": f"only {available} in stock",
                "type": "insufficient_stock",
            }
        ],
    )


async def get_reservation(db: asyncpg.Pool, product_id: int, reservation_id: str) -> Row | None:
    row = await db.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1 AND product_id = $2",
        reservation_id,
        product_id,
    )
    return dict(row) if row else None


async def release(db: asyncpg.Pool, product_id: int, reservation_id: str) -> Row:
    """Give a reservation's stock back, once. Releasing one that was never made records it
    as released, so a POST for it still on its way can no longer take stock."""
    async with db.acquire() as conn, conn.transaction():
        # The product row first, as a reservation locks it: the same order, no deadlock.
        if (
            await conn.fetchval(
                "SELECT 1 FROM products WHERE id = $1 FOR NO KEY UPDATE", product_id
            )
            is None
        ):
            raise not_found("Product", product_id)
        row = await conn.fetchrow(
            "UPDATE reservations SET status = 'released', released_at = now()"
            " WHERE id = $1 AND product_id = $2 AND status = 'held'"
            f" RETURNING {RESERVATION_COLUMNS}",
            reservation_id,
            product_id,
        )
        if row is not None:
            await conn.execute(
                "UPDATE products SET quantity = quantity + $2, updated_at = now() WHERE id = $1",
                product_id,
                row["quantity"],
            )
            return dict(row)
        # Not held: released before (done), or never made (no reservation of this product
        # can be in flight while we hold its row): record it as released for good.
        row = await conn.fetchrow(
            "INSERT INTO reservations (id, product_id, quantity, status, released_at)"
            " VALUES ($1, $2, 0, 'released', now()) ON CONFLICT (id) DO NOTHING"
            f" RETURNING {RESERVATION_COLUMNS}",
            reservation_id,
            product_id,
        )
        if row is None:
            row = await conn.fetchrow(
                f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1", reservation_id
            )
        if row["product_id"] != product_id:
            raise not_found("Reservation", reservation_id)
        return dict(row)

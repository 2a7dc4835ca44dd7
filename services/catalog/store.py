"""The catalog's SQL. Plain functions over an asyncpg pool or connection."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.errors import ApiError, conflict, field_error

Row = dict[str, Any]
PRODUCT_COLUMNS = "id, name, price, quantity, brand_id, created_at, updated_at"
BRAND_COLUMNS = "id, name, created_at"


def missing_brand(brand_id: int | None) -> ApiError:
    return ApiError(
        422,
        f"Brand {brand_id} does not exist",
        details=[field_error("brand_id", "no such brand", "missing")],
    )


# ---------------------------------------------------------------- brands


async def list_brands(db: asyncpg.Pool, limit: int, offset: int) -> tuple[list[Row], int]:
    async with db.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {BRAND_COLUMNS} FROM brands ORDER BY id LIMIT $1 OFFSET $2", limit, offset
        )
        total = await conn.fetchval("SELECT count(*) FROM brands")
    return [dict(row) for row in rows], total


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
    matches = "($3::bigint IS NULL OR brand_id = $3)"
    async with db.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE {matches}"
            " ORDER BY id LIMIT $1 OFFSET $2",
            limit,
            offset,
            brand_id,
        )
        total = await conn.fetchval(
            "SELECT count(*) FROM products WHERE ($1::bigint IS NULL OR brand_id = $1)", brand_id
        )
    return [dict(row) for row in rows], total


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

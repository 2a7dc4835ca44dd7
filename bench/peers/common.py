"""What every peer shares: catalog's statements, the JSON of a row, the 404 body.

The SQL is the text catalog's store runs (services/catalog/store.py), so the peers do
the same work in PostgreSQL and differ only in the framework around it.
"""

from __future__ import annotations

import os
from decimal import Decimal

import asyncpg
import orjson

COLUMNS = "id, name, price, quantity, brand_id, created_at, updated_at"
GET_PRODUCT = f"SELECT {COLUMNS} FROM products WHERE id = $1"
LIST_SOURCE = "products WHERE ($1::bigint IS NULL OR brand_id = $1)"
LIST_PAGE = f"SELECT {COLUMNS} FROM {LIST_SOURCE} ORDER BY id LIMIT $2 OFFSET $3"
LIST_TOTAL = f"SELECT count(*) FROM {LIST_SOURCE}"
DEFAULT_LIMIT = 20
POOL_MIN, POOL_MAX = 1, 5  # catalog's DB_POOL_MIN / DB_POOL_MAX defaults


async def create_pool() -> asyncpg.Pool:
    """asyncpg's pool as it comes (its reset on release included), catalog's sizes."""
    return await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=POOL_MIN, max_size=POOL_MAX
    )


def decimal_as_string(value: object) -> str:
    """orjson's `default`: NUMERIC arrives as Decimal and leaves as an exact string."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def dumps(data: object) -> bytes:
    return orjson.dumps(data, default=decimal_as_string)


def not_found_body(product_id: int) -> bytes:
    return orjson.dumps(
        {"error": f"Product {product_id} does not exist", "code": "not_found", "details": []}
    )


def bad_id_body() -> bytes:
    return orjson.dumps(
        {"error": "id must be a positive integer", "code": "validation_error", "details": []}
    )

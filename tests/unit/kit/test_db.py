"""The kit's PostgreSQL helpers: one-statement pages, and the pool's cheap release."""

from __future__ import annotations

import pytest
from aiohttp import web

from services.kit.config import KitSettings
from services.kit.db import fetch_page, postgres_ctx
from services.kit.health import Readiness
from services.kit.keys import DB_POOL, READINESS, SETTINGS
from tests.unit.conftest import truncate_all

COLUMNS = "id, name, price, quantity"


@pytest.fixture
async def pool(databases):
    dsn = databases["catalog"]
    await truncate_all(dsn)
    app = web.Application()
    app[SETTINGS] = KitSettings(service_name="catalog", database_url=dsn, db_pool_max=1)
    app[READINESS] = Readiness()
    context = postgres_ctx()(app)
    await anext(context)
    db = app[DB_POOL]
    await db.executemany(
        "INSERT INTO products (name, price, quantity) VALUES ($1, $2, $3)",
        [(f"P{n}", n, n) for n in range(7)],
    )
    yield db
    with pytest.raises(StopAsyncIteration):
        await anext(context)


async def test_a_page_and_its_total(pool):
    items, total = await fetch_page(pool, COLUMNS, "products", (), 3, 2)
    assert total == 7
    assert [item["name"] for item in items] == ["P2", "P3", "P4"]
    assert list(items[0]) == ["id", "name", "price", "quantity"]  # no extra column


async def test_a_filtered_page(pool):
    source = "products WHERE quantity >= $1"
    items, total = await fetch_page(pool, COLUMNS, source, (5,), 10, 0)
    assert total == 2 and [item["quantity"] for item in items] == [5, 6]


async def test_past_the_end_still_counts(pool):
    assert await fetch_page(pool, COLUMNS, "products", (), 5, 100) == ([], 7)
    assert await fetch_page(pool, COLUMNS, "products WHERE quantity > $1", (99,), 5, 0) == ([], 0)


async def test_a_transaction_left_open_is_rolled_back_on_release(pool):
    """The pool skips asyncpg's reset query, not the rollback: nothing leaks into the
    next request that gets the (only) connection."""
    conn = await pool.acquire()
    await conn.execute("BEGIN")
    await conn.execute("INSERT INTO products (name, price, quantity) VALUES ('ghost', 1, 1)")
    await pool.release(conn)
    async with pool.acquire() as again:
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT count(*) FROM products WHERE name = 'ghost'") == 0

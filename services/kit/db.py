"""PostgreSQL: one asyncpg pool per worker, opened and closed in cleanup_ctx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import asyncpg
from aiohttp import web
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from .keys import DB_POOL, READINESS, SETTINGS

log = logging.getLogger("agora.db")

# Errors that mean "the database is not reachable now", answered 503, not 500.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # The server shutting down or killing the session under a query (57P01, 57P02):
    # a restart or a failover, waited out like any outage.
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)
STARTUP_PATIENCE = 30.0  # seconds a starting worker waits for the database


async def fetch_page(
    conn: asyncpg.Connection,
    columns: str,
    source: str,
    args: Sequence[object],
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """One page of `SELECT columns FROM source ORDER BY id`, and how many rows it has in all.

    `source` is a table with an optional WHERE clause whose parameters are $1..$n (`args`).
    """
    page = f"ORDER BY id LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    rows = await conn.fetch(f"SELECT {columns} FROM {source} {page}", *args, limit, offset)
    total = await conn.fetchval(f"SELECT count(*) FROM {source}", *args)
    return rows, total


async def connect_with_retry(dsn: str, *, patience: float = STARTUP_PATIENCE) -> asyncpg.Connection:
    async for attempt in _retrying(patience):
        with attempt:
            return await asyncpg.connect(dsn)
    raise AssertionError("unreachable")


def _retrying(patience: float) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(CONNECTION_ERRORS),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        stop=stop_after_delay(patience),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "database not reachable yet, retrying", extra={"attempt": state.attempt_number}
        ),
    )


async def postgres_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url is not None  # checked by create_app
    pool: asyncpg.Pool | None = None
    async for attempt in _retrying(STARTUP_PATIENCE):
        with attempt:
            pool = await asyncpg.create_pool(
                settings.database_url,
                min_size=min(settings.db_pool_min, settings.db_pool_max),
                max_size=settings.db_pool_max,
                max_inactive_connection_lifetime=60.0,
            )
    assert pool is not None
    app[DB_POOL] = pool
    app[READINESS].add_check("postgres", lambda: pool.fetchval("SELECT 1"))
    yield
    await pool.close()

"""PostgreSQL: one asyncpg pool per worker, opened and closed in cleanup_ctx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

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
    conn: asyncpg.Connection | asyncpg.Pool,
    columns: str,
    source: str,
    args: Sequence[object],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of `SELECT columns FROM source ORDER BY id` as dicts, and how many rows
    the source has in all.

    `source` is a table with an optional WHERE clause whose parameters are $1..$n (`args`).
    One statement and one round trip: the total comes along as an uncounted first column
    (a subquery PostgreSQL runs once), and only a page past the end asks for it again.
    """
    count = f"SELECT count(*) FROM {source}"
    page = f"ORDER BY id LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    rows = await conn.fetch(
        f"SELECT ({count}) AS total_, {columns} FROM {source} {page}", *args, limit, offset
    )
    if not rows:
        if offset == 0:  # the source was empty in that statement's snapshot
            return [], 0
        # A page past the end: the total from a second statement, which may have seen
        # later commits (counting again for an empty first page answered "total 2" with
        # no items while rows were being inserted).
        return [], await conn.fetchval(count, *args)
    names = tuple(rows[0].keys())[1:]
    return [dict(zip(names, row[1:], strict=True)) for row in rows], rows[0][0]


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


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond what asyncpg always does (roll back an
    open transaction, drop listeners).

    asyncpg's default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release: one more round trip per request, which cost about as
    much as the query itself (BENCHMARKS.md, peers). Pooled connections here never hold
    session state (no LISTEN, SET, advisory lock or cursor outside a transaction): what
    needs one takes its own connection, like the outbox relay's leader lock.
    """


PoolInit = Callable[[asyncpg.Connection], Coroutine[Any, Any, None]]


def postgres_ctx(
    init: PoolInit | None = None,
    connection_class: type[asyncpg.Connection] = asyncpg.Connection,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The pool's cleanup context; `init` runs on each new connection (type codecs);
    `connection_class` is tracing's (services.kit.tracing.connection_class) when on."""

    async def postgres(app: web.Application) -> AsyncIterator[None]:
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
                    init=init,
                    reset=keep_session,
                    connection_class=connection_class,
                )
        assert pool is not None
        app[DB_POOL] = pool
        app[READINESS].add_check("postgres", lambda: pool.fetchval("SELECT 1"))
        yield
        await pool.close()

    return postgres

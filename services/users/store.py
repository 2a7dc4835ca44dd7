"""The SQL of users."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.db import fetch_page
from services.kit.errors import conflict

Row = dict[str, Any]
USER_COLUMNS = "id, name, age, email, created_at"


async def list_users(
    db: asyncpg.Pool, limit: int, offset: int, min_age: int | None
) -> tuple[list[Row], int]:
    source = "users WHERE ($1::int IS NULL OR age >= $1)"
    async with db.acquire() as conn:
        return await fetch_page(conn, USER_COLUMNS, source, (min_age,), limit, offset)


async def get_user(db: asyncpg.Pool, user_id: int) -> Row | None:
    row = await db.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return dict(row) if row else None


async def create_user(db: asyncpg.Pool, name: str, age: int, email: str | None) -> Row:
    try:
        row = await db.fetchrow(
            f"INSERT INTO users (name, age, email) VALUES ($1, $2, $3) RETURNING {USER_COLUMNS}",
            name,
            age,
            email,
        )
    except asyncpg.UniqueViolationError:
        raise conflict(f"A user with email {email} already exists") from None
    return dict(row)

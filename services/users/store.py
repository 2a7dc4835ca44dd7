"""The SQL of users. The password hash never leaves this module but to be checked: the
columns callers get (USER_COLUMNS) do not include it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.kit import outbox
from services.kit.db import fetch_page
from services.kit.errors import conflict

Row = dict[str, Any]
USER_COLUMNS = "id, name, age, email, username, created_at"


def event_payload(user: Row) -> Row:
    """What other services learn of a user (search, mentions): no email, no hash."""
    return {key: user[key] for key in ("id", "name", "username", "age", "created_at")}


async def list_users(
    db: asyncpg.Pool, limit: int, offset: int, min_age: int | None, username: str | None = None
) -> tuple[list[Row], int]:
    source = (
        "users WHERE ($1::int IS NULL OR age >= $1)"
        " AND ($2::text IS NULL OR lower(username) = lower($2))"
    )
    async with db.acquire() as conn:
        return await fetch_page(conn, USER_COLUMNS, source, (min_age, username), limit, offset)


async def _in_order(db: asyncpg.Pool, key: str, sql_type: str, values: Sequence[Any]) -> list[Row]:
    """The users whose `key` is one of `values`, in the order of `values`."""
    rows = await db.fetch(
        f"SELECT {USER_COLUMNS} FROM users JOIN unnest($1::{sql_type}[]) WITH ORDINALITY"
        f" AS asked (wanted, position) ON {key} = asked.wanted ORDER BY asked.position",
        list(values),
    )
    return [dict(row) for row in rows]


async def users_by_id(db: asyncpg.Pool, ids: Sequence[int]) -> list[Row]:
    """The users with these ids, in the order asked; missing ones left out."""
    return await _in_order(db, "id", "bigint", ids)


async def users_by_username(db: asyncpg.Pool, usernames: Sequence[str]) -> list[Row]:
    """The users with these usernames (lower case), in the order asked; missing left out."""
    return await _in_order(db, "lower(username)", "text", usernames)


async def get_user(db: asyncpg.Pool, user_id: int) -> Row | None:
    row = await db.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return dict(row) if row else None


async def credentials(db: asyncpg.Pool, username: str) -> Row | None:
    """id, username and password hash of an account (for login only)."""
    row = await db.fetchrow(
        "SELECT id, username, password_hash FROM users WHERE lower(username) = lower($1)",
        username,
    )
    return dict(row) if row else None


async def replace_hash(db: asyncpg.Pool, user_id: int, old: str, new: str) -> None:
    """A hash made with older parameters, replaced after a successful login (unless it
    changed meanwhile)."""
    await db.execute(
        "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        user_id,
        old,
        new,
    )


async def create_user(
    db: asyncpg.Pool,
    stream: str,
    *,
    name: str,
    age: int | None,
    email: str | None,
    username: str | None = None,
    password_hash: str | None = None,
) -> Row:
    """The new user and its user.created event, in one transaction."""
    async with db.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO users (name, age, email, username, password_hash)"
                f" VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}",
                name,
                age,
                email,
                username,
                password_hash,
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "users_username_key":
                raise conflict(f"The username {username} is taken") from None
            raise conflict(f"A user with email {email} already exists") from None
        user = dict(row)
        await outbox.write(conn, stream, "user.created", user["id"], event_payload(user))
    return user

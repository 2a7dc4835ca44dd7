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


ACCOUNT_COLUMNS = "id, username, external_id"


async def accounts_by(db: asyncpg.Pool, key: str, values: Sequence[Any]) -> list[Row]:
    """Accounts (id, username, external id) whose `key` (id, external_id or username in
    lower case) is one of `values`, in that order; missing ones left out."""
    column, sql_type = {
        "id": ("id", "bigint"),
        "external_id": ("external_id", "bigint"),
        "username": ("lower(username)", "text"),
    }[key]
    rows = await db.fetch(
        f"SELECT {ACCOUNT_COLUMNS} FROM users JOIN unnest($1::{sql_type}[]) WITH ORDINALITY"
        f" AS asked (wanted, position) ON {column} = asked.wanted"
        " WHERE username IS NOT NULL ORDER BY asked.position",
        list(values),
    )
    return [dict(row) for row in rows]


async def create_user(
    db: asyncpg.Pool,
    stream: str,
    *,
    name: str,
    age: int | None,
    email: str | None,
    username: str | None = None,
    password_hash: str | None = None,
    external_id: int | None = None,
) -> Row:
    """The new user and its user.created event, in one transaction."""
    async with db.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO users (name, age, email, username, password_hash, external_id)"
                f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}, external_id",
                name,
                age,
                email,
                username,
                password_hash,
                external_id,
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "users_username_key":
                raise conflict(f"The username {username} is taken") from None
            if error.constraint_name == "users_external_id_key":
                raise conflict(f"The external id {external_id} is taken") from None
            raise conflict(f"A user with email {email} already exists") from None
        user = dict(row)
        external = user.pop("external_id")
        await outbox.write(conn, stream, "user.created", user["id"], event_payload(user))
    if external_id is not None:
        user["external_id"] = external
    return user

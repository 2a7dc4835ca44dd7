"""The SQL of search: the index of posts and users, and the bounded queries over it.

A post's row and its tombstone are changed under a transaction-scoped advisory lock on
the post's id, so that a post.created handled by one consumer and the post.deleted
handled by another at the same moment cannot leave a deleted post indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from .query import CONFIG, Term, tag_lexeme, tsquery_sql

Row = dict[str, Any]


class TooBroad(Exception):
    """The query ran past its time bound."""


class NoSearchableTerms(Exception):
    """Every word of the query is a stop word: nothing an index can look up."""


def document_sql(first: int) -> str:
    """The tsvector of a post: its text, and its tags as exact lexemes (weight A)."""
    return (
        f"to_tsvector('{CONFIG}', ${first})"
        f" || setweight(array_to_tsvector(${first + 1}::text[]), 'A')"
    )


def post_tags(post: Row) -> list[str]:
    """'#tag' for each hashtag, '@username' for the author and each user mentioned."""
    tags = [tag_lexeme("#", tag) for tag in post.get("hashtags", [])]
    users = [post["author"], *post.get("mentions", [])]
    tags += [tag_lexeme("@", user["username"]) for user in users]
    return list(dict.fromkeys(tags))


async def index_posts(db: asyncpg.Pool, posts: Sequence[Row]) -> int:
    """Index (or re-index) posts, from their JSON as posts answers it, in one
    transaction; a post deleted meanwhile (a tombstone) is never indexed again. How many
    rows it wrote."""
    if not posts:
        return 0
    ids = sorted(post["id"] for post in posts)
    async with db.acquire() as conn, conn.transaction():
        # In id order: two transactions locking overlapping sets never deadlock.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(id) FROM unnest($1::bigint[]) AS id ORDER BY id", ids
        )
        gone = await conn.fetchval(
            "SELECT count(*) FROM deleted_posts WHERE post_id = ANY($1::bigint[])", ids
        )
        await conn.executemany(
            "INSERT INTO posts (post_id, author_id, document, created_at)"
            f" SELECT $1, $2, {document_sql(4)}, $3"
            " WHERE NOT EXISTS (SELECT 1 FROM deleted_posts WHERE post_id = $1)"
            " ON CONFLICT (post_id) DO UPDATE SET document = excluded.document,"
            " indexed_at = now()",
            [
                (
                    post["id"],
                    post["author"]["id"],
                    _timestamp(post["created_at"]),
                    post["text"],
                    post_tags(post),
                )
                for post in posts
            ],
        )
    return len(posts) - gone


def _timestamp(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def is_indexed(db: asyncpg.Pool, post_id: int) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM posts WHERE post_id = $1", post_id))


async def is_deleted(db: asyncpg.Pool, post_id: int) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM deleted_posts WHERE post_id = $1", post_id))


async def remove_post(db: asyncpg.Pool, post_id: int) -> bool:
    """post.deleted: out of the index, and a tombstone. True when it was new."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", post_id)
        await conn.execute("DELETE FROM posts WHERE post_id = $1", post_id)
        status = await conn.execute(
            "INSERT INTO deleted_posts (post_id) VALUES ($1) ON CONFLICT DO NOTHING", post_id
        )
    return status.endswith(" 1")


async def index_user(db: asyncpg.Pool | asyncpg.Connection, user: Row) -> bool:
    """An account (a user with a username); False for a user without one."""
    if not user.get("username"):
        return False
    status = await db.execute(
        "INSERT INTO users (id, username, name, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (id) DO UPDATE SET username = excluded.username, name = excluded.name,"
        " indexed_at = now()",
        user["id"],
        user["username"],
        user["name"],
        _timestamp(user["created_at"]),
    )
    return status.endswith(" 1")


async def _bounded(conn: asyncpg.Connection, timeout_ms: int) -> None:
    """Inside a transaction: its statements end after timeout_ms, and the planner takes
    an index over a scan of every row (a query matching most posts stays on the index
    and is cut off by the timeout, never a sequential scan under load)."""
    await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
    await conn.execute("SET LOCAL enable_seqscan = off")


async def search_posts(
    db: asyncpg.Pool, terms: list[Term], limit: int, offset: int, timeout_ms: int
) -> list[int]:
    """Post ids matching every term, by relevance (ts_rank) then recency."""
    query, values = tsquery_sql(terms, 3)
    async with db.acquire() as conn, conn.transaction(readonly=True):
        await _bounded(conn, timeout_ms)
        try:
            check, _ = tsquery_sql(terms, 1)
            if not await conn.fetchval(f"SELECT numnode({check})", *values):
                raise NoSearchableTerms
            rows = await conn.fetch(
                f"SELECT post_id FROM posts WHERE document @@ {query}"
                f" ORDER BY ts_rank(document, {query}) DESC, post_id DESC LIMIT $1 OFFSET $2",
                limit,
                offset,
                *values,
            )
        except asyncpg.QueryCanceledError:
            raise TooBroad from None
    return [row["post_id"] for row in rows]


async def search_users(
    db: asyncpg.Pool, q: str, limit: int, offset: int, timeout_ms: int, typo_min: int = 3
) -> list[Row]:
    """Accounts whose username or name starts with q (any case), then, for q of at least
    `typo_min` characters, usernames like it (pg_trgm similarity): prefix matches first."""
    prefix = q.lower()
    async with db.acquire() as conn, conn.transaction(readonly=True):
        await _bounded(conn, timeout_ms)
        try:
            rows = await conn.fetch(
                "SELECT id, username, name FROM users"
                " WHERE lower(username) ^@ $1 OR lower(name) ^@ $1"
                "    OR (length($1) >= $4 AND lower(username) % $1)"
                " ORDER BY lower(username) ^@ $1 DESC, lower(name) ^@ $1 DESC,"
                " similarity(lower(username), $1) DESC, lower(username), id"
                " LIMIT $2 OFFSET $3",
                prefix,
                limit,
                offset,
                typo_min,
            )
        except asyncpg.QueryCanceledError:
            raise TooBroad from None
    return [dict(row) for row in rows]


async def reindex_started(db: asyncpg.Pool) -> datetime:
    return await db.fetchval("SELECT now()")


async def sweep(db: asyncpg.Pool, started: datetime) -> tuple[int, int]:
    """After a reindex: the rows it did not see again (indexed before it started, and not
    since by an event) are gone at their source. How many posts and users it removed."""
    posts = await db.execute("DELETE FROM posts WHERE indexed_at < $1", started)
    users = await db.execute("DELETE FROM users WHERE indexed_at < $1", started)
    return int(posts.split()[-1]), int(users.split()[-1])


async def clear(db: asyncpg.Pool) -> None:
    """For a corrupted index: everything but the tombstones."""
    await db.execute("TRUNCATE posts, users")


async def counts(db: asyncpg.Pool) -> Sequence[int]:
    row = await db.fetchrow("SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM users)")
    return row[0], row[1]

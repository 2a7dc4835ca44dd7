"""The SQL of engagement: likes, comments, and the per-post counts kept beside them.

A count changes in the same transaction as the like or comment it counts, by an UPDATE of
the post's row, which serialises concurrent changes of one post: counts are exact. The
same UPDATE checks that the post is not deleted, and post.deleted sets `deleted` by
updating that row too before it removes the likes and comments, so a like racing with the
deletion either commits first (and is removed) or finds the post deleted (and is refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from services.kit import outbox

Row = dict[str, Any]
COMMENT_COLUMNS = "id, post_id, author_id, author_username, text, mentions::text, created_at"


class PostGone(Exception):
    """The post was deleted (found in the transaction that would have changed it)."""


def comment_out(row: asyncpg.Record) -> Row:
    return {
        "id": row["id"],
        "post_id": row["post_id"],
        "author": {"id": row["author_id"], "username": row["author_username"]},
        "text": row["text"],
        "mentions": orjson.loads(row["mentions"]),
        "created_at": row["created_at"],
    }


async def post_state(db: asyncpg.Pool, post_id: int) -> Row | None:
    """{author_id, deleted} of a post engagement knows; None for one it has not seen."""
    row = await db.fetchrow("SELECT author_id, deleted FROM posts WHERE post_id = $1", post_id)
    return dict(row) if row else None


async def remember_post(
    db: asyncpg.Pool | asyncpg.Connection, post_id: int, author_id: int
) -> bool:
    """A post that exists (post.created, or posts said so); True when it was new here."""
    status = await db.execute(
        "INSERT INTO posts (post_id, author_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        post_id,
        author_id,
    )
    return status.endswith(" 1")


async def forget_post(db: asyncpg.Pool, post_id: int, author_id: int) -> bool:
    """post.deleted: the post marked deleted (kept, so later likes are refused without
    asking posts), its likes and comments removed. True when it was not deleted yet."""
    async with db.acquire() as conn, conn.transaction():
        was_deleted = await conn.fetchval(
            "SELECT deleted FROM posts WHERE post_id = $1 FOR UPDATE", post_id
        )
        if was_deleted is None:
            await conn.execute(
                "INSERT INTO posts (post_id, author_id, deleted) VALUES ($1, $2, true)"
                " ON CONFLICT (post_id) DO UPDATE SET deleted = true",
                post_id,
                author_id,
            )
            return True
        if was_deleted:
            return False
        await conn.execute(
            "UPDATE posts SET deleted = true, like_count = 0, comment_count = 0 WHERE post_id = $1",
            post_id,
        )
        await conn.execute("DELETE FROM likes WHERE post_id = $1", post_id)
        await conn.execute("DELETE FROM comments WHERE post_id = $1", post_id)
        return True


async def _count(conn: asyncpg.Connection, post_id: int, column: str, change: int) -> None:
    """Change a post's count; PostGone (rolling the transaction back) if it was deleted."""
    updated = await conn.fetchval(
        f"UPDATE posts SET {column} = {column} + $2 WHERE post_id = $1 AND NOT deleted"
        " RETURNING post_id",
        post_id,
        change,
    )
    if updated is None:
        raise PostGone(post_id)


async def like(db: asyncpg.Pool, stream: str, post_id: int, user_id: int, username: str) -> bool:
    """True when the like is new (counted and announced), False when it existed."""
    async with db.acquire() as conn, conn.transaction():
        liked_at = await conn.fetchval(
            "INSERT INTO likes (post_id, user_id, username) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING created_at",
            post_id,
            user_id,
            username,
        )
        if liked_at is None:
            return False
        await _count(conn, post_id, "like_count", 1)
        payload = {"post_id": post_id, "user_id": user_id, "created_at": liked_at}
        await outbox.write(conn, stream, "like.created", post_id, payload)
        return True


async def unlike(db: asyncpg.Pool, stream: str, post_id: int, user_id: int) -> bool:
    """True when a like was removed, False when there was none."""
    async with db.acquire() as conn, conn.transaction():
        removed = await conn.fetchval(
            "DELETE FROM likes WHERE post_id = $1 AND user_id = $2 RETURNING id",
            post_id,
            user_id,
        )
        if removed is None:
            return False
        await _count(conn, post_id, "like_count", -1)
        payload = {"post_id": post_id, "user_id": user_id}
        await outbox.write(conn, stream, "like.deleted", post_id, payload)
        return True


async def likes_of(db: asyncpg.Pool, post_id: int, user_id: int | None) -> Row:
    row = await db.fetchrow(
        "SELECT like_count, EXISTS (SELECT 1 FROM likes WHERE post_id = $1 AND user_id = $2)"
        " AS mine FROM posts WHERE post_id = $1",
        post_id,
        user_id or 0,
    )
    count = row["like_count"] if row else 0
    return {"count": count, "liked_by_me": None if user_id is None else bool(row and row["mine"])}


async def likers(db: asyncpg.Pool, post_id: int, cursor: int | None, limit: int) -> list[Row]:
    """Who liked a post, newest first, below the like id `cursor`; each with `_key`."""
    rows = await db.fetch(
        "SELECT id, user_id, username, created_at FROM likes WHERE post_id = $1"
        " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        post_id,
        cursor,
        limit,
    )
    return [
        {
            "_key": r["id"],
            "id": r["user_id"],
            "username": r["username"],
            "liked_at": r["created_at"],
        }
        for r in rows
    ]


async def counts(db: asyncpg.Pool, post_ids: Sequence[int], user_id: int | None) -> list[Row]:
    """Counts of each post asked, in order: one indexed query (0 for a post not known)."""
    rows = await db.fetch(
        "SELECT asked.post_id, coalesce(p.like_count, 0) AS like_count,"
        " coalesce(p.comment_count, 0) AS comment_count,"
        " ($2::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM likes l"
        "   WHERE l.post_id = asked.post_id AND l.user_id = $2)) AS mine"
        " FROM unnest($1::bigint[]) WITH ORDINALITY AS asked (post_id, position)"
        " LEFT JOIN posts p ON p.post_id = asked.post_id AND NOT p.deleted"
        " ORDER BY asked.position",
        list(post_ids),
        user_id,
    )
    return [
        {
            "post_id": r["post_id"],
            "like_count": r["like_count"],
            "comment_count": r["comment_count"],
            "liked_by_me": None if user_id is None else r["mine"],
        }
        for r in rows
    ]


async def add_comment(
    db: asyncpg.Pool,
    stream: str,
    *,
    post_id: int,
    author_id: int,
    author_username: str,
    text: str,
    mentions: list[Row],
) -> Row:
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO comments (post_id, author_id, author_username, text, mentions)"
            f" VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING {COMMENT_COLUMNS}",
            post_id,
            author_id,
            author_username,
            text,
            orjson.dumps(mentions).decode(),
        )
        await _count(conn, post_id, "comment_count", 1)
        comment = comment_out(row)
        payload = {
            "comment_id": comment["id"],
            "post_id": post_id,
            "author_id": author_id,
            "mentions": [user["id"] for user in mentions],
            "created_at": comment["created_at"],
        }
        await outbox.write(conn, stream, "comment.created", comment["id"], payload)
    return comment


async def get_comment(db: asyncpg.Pool, comment_id: int) -> Row | None:
    row = await db.fetchrow(
        f"SELECT {COMMENT_COLUMNS}, (SELECT p.author_id FROM posts p"
        "   WHERE p.post_id = comments.post_id AND NOT p.deleted) AS post_author_id"
        " FROM comments WHERE id = $1",
        comment_id,
    )
    if row is None or row["post_author_id"] is None:
        return None
    return {**comment_out(row), "post_author_id": row["post_author_id"]}


async def delete_comment(db: asyncpg.Pool, stream: str, comment: Row) -> bool:
    async with db.acquire() as conn, conn.transaction():
        removed = await conn.fetchval(
            "DELETE FROM comments WHERE id = $1 RETURNING id", comment["id"]
        )
        if removed is None:
            return False
        await _count(conn, comment["post_id"], "comment_count", -1)
        payload = {"comment_id": comment["id"], "post_id": comment["post_id"]}
        await outbox.write(conn, stream, "comment.deleted", comment["id"], payload)
        return True


async def thread(db: asyncpg.Pool, post_id: int, cursor: int | None, limit: int) -> list[Row]:
    """A post's comments, oldest first, after the comment id `cursor`."""
    rows = await db.fetch(
        f"SELECT {COMMENT_COLUMNS} FROM comments WHERE post_id = $1"
        " AND id > coalesce($2::bigint, 0) ORDER BY id LIMIT $3",
        post_id,
        cursor,
        limit,
    )
    return [comment_out(row) for row in rows]

"""The SQL of graph: follows, per-user counts and their events, in one transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit import outbox

Row = dict[str, Any]
# Both users' counts, their rows locked in user id order: two follows (or unfollows)
# between the same pair in opposite directions take them in the same order (no deadlock).
_COUNT_FOLLOW = """
INSERT INTO follow_counts AS c (user_id, followers, following)
SELECT user_id, followers, following FROM (VALUES ($1::bigint, 0, 1), ($2::bigint, 1, 0))
    AS change (user_id, followers, following) ORDER BY user_id
ON CONFLICT (user_id) DO UPDATE
    SET followers = c.followers + EXCLUDED.followers, following = c.following + EXCLUDED.following
"""
# (An upsert of -1 would fail the CHECK on the row it proposes, before the conflict.)
_LOCK_PAIR = (
    "SELECT user_id FROM follow_counts WHERE user_id IN ($1, $2) ORDER BY user_id FOR UPDATE"
)
_COUNT_UNFOLLOW = """
UPDATE follow_counts SET
    following = following - (user_id = $1)::int, followers = followers - (user_id = $2)::int
WHERE user_id IN ($1, $2)
"""


async def _event(
    conn: asyncpg.Connection, stream: str, kind: str, follower: int, followee: int
) -> None:
    await outbox.write(
        conn, stream, kind, follower, {"follower_id": follower, "followee_id": followee}
    )


async def follow(db: asyncpg.Pool, stream: str, follower: int, followee: int) -> bool:
    """Whether the follow is new (then counted, with its follow.created event)."""
    async with db.acquire() as conn, conn.transaction():
        added = await conn.fetchval(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            follower,
            followee,
        )
        if not added:
            return False
        await conn.execute(_COUNT_FOLLOW, follower, followee)
        await _event(conn, stream, "follow.created", follower, followee)
    return True


async def unfollow(db: asyncpg.Pool, stream: str, follower: int, followee: int) -> bool:
    """Whether there was a follow to remove (then uncounted, with follow.deleted)."""
    async with db.acquire() as conn, conn.transaction():
        removed = await conn.fetchval(
            "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING true",
            follower,
            followee,
        )
        if not removed:
            return False
        await conn.execute(_LOCK_PAIR, follower, followee)
        await conn.execute(_COUNT_UNFOLLOW, follower, followee)
        await _event(conn, stream, "follow.deleted", follower, followee)
    return True


async def counts(db: asyncpg.Pool, user_id: int) -> Row:
    row = await db.fetchrow(
        "SELECT followers, following FROM follow_counts WHERE user_id = $1", user_id
    )
    return {
        "user_id": user_id,
        "followers": row["followers"] if row else 0,
        "following": row["following"] if row else 0,
    }


def _page(rows: list[asyncpg.Record], limit: int) -> Row:
    items = [{"id": row["id"], "since": row["created_at"]} for row in rows]
    more = len(rows) == limit
    return {"items": items, "next": str(rows[-1]["seq"]) if more else None}


async def followers(db: asyncpg.Pool, user_id: int, cursor: int | None, limit: int) -> Row:
    rows = await db.fetch(
        "SELECT follower_id AS id, created_at, seq FROM follows"
        " WHERE followee_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        user_id,
        cursor or 2**63 - 1,
        limit,
    )
    return _page(rows, limit)


async def following(
    db: asyncpg.Pool, user_id: int, cursor: int | None, limit: int, min_followers: int | None
) -> Row:
    """Newest first; with min_followers, only followees with at least that many."""
    if min_followers is None:
        rows = await db.fetch(
            "SELECT followee_id AS id, created_at, seq FROM follows"
            " WHERE follower_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            user_id,
            cursor or 2**63 - 1,
            limit,
        )
    else:
        rows = await db.fetch(
            "SELECT f.followee_id AS id, f.created_at, f.seq FROM follows f"
            " JOIN follow_counts c ON c.user_id = f.followee_id AND c.followers >= $4"
            " WHERE f.follower_id = $1 AND f.seq < $2 ORDER BY f.seq DESC LIMIT $3",
            user_id,
            cursor or 2**63 - 1,
            limit,
            min_followers,
        )
    return _page(rows, limit)


async def following_ids(db: asyncpg.Pool, user_id: int, limit: int) -> list[int]:
    rows = await db.fetch(
        "SELECT followee_id FROM follows WHERE follower_id = $1 ORDER BY seq DESC LIMIT $2",
        user_id,
        limit,
    )
    return [row["followee_id"] for row in rows]

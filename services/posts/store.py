"""The SQL of posts: posts with their short links, and their events, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from services.kit import outbox

Row = dict[str, Any]
POST_COLUMNS = (
    "id, author_id, author_username, text, mentions::text AS mentions, hashtags,"
    " urls::text AS urls, media::text AS media, reply_to, kind, created_at"
)


def public(row: asyncpg.Record) -> Row:
    """A stored post as the API answers it."""
    return {
        "id": row["id"],
        "author": {"id": row["author_id"], "username": row["author_username"]},
        "text": row["text"],
        "mentions": orjson.loads(row["mentions"]),
        "hashtags": list(row["hashtags"]),
        "urls": orjson.loads(row["urls"]),
        "media": orjson.loads(row["media"]),
        "reply_to": row["reply_to"],
        "kind": row["kind"],
        "created_at": row["created_at"],
    }


async def exists(db: asyncpg.Pool, post_id: int) -> bool:
    return bool(await db.fetchval("SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1)", post_id))


async def create(
    db: asyncpg.Pool,
    stream: str,
    *,
    author_id: int,
    author_username: str,
    text: str,
    mentions: list[Row],
    hashtags: list[str],
    links: list[tuple[str, str]],
    short_urls: list[str],
    media: list[Row],
    reply_to: int | None,
    kind: str = "post",
) -> Row:
    """The post, its short links and its post.created event, committed together. The id
    (and created_at, the instant it encodes) comes from next_post_id() (see 0001_init.sql)."""
    urls = [
        {"short": short, "original": url} for short, (_, url) in zip(short_urls, links, strict=True)
    ]
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "WITH new AS (SELECT next_post_id() AS id)"
            " INSERT INTO posts (id, author_id, author_username, text, mentions,"
            " hashtags, urls, media, reply_to, kind, created_at)"
            " SELECT new.id, $1, $2, $3, $4::jsonb, $5, $6::jsonb, $7::jsonb, $8, $9,"
            " to_timestamp((new.id >> 10) / 1000.0) FROM new"
            f" RETURNING {POST_COLUMNS}",
            author_id,
            author_username,
            text,
            orjson.dumps(mentions).decode(),
            hashtags,
            orjson.dumps(urls).decode(),
            orjson.dumps(media).decode(),
            reply_to,
            kind,
        )
        if links:
            await conn.executemany(
                "INSERT INTO short_links (code, post_id, url, position) VALUES ($1, $2, $3, $4)",
                [(code, row["id"], url, n) for n, (code, url) in enumerate(links)],
            )
        post = public(row)
        await outbox.write(
            conn,
            stream,
            "post.created",
            post["id"],
            {
                "post_id": post["id"],
                "author_id": author_id,
                "created_at": post["created_at"],
                "mentions": [user["id"] for user in mentions],
                "reply_to": reply_to,
            },
        )
    return post


async def get(db: asyncpg.Pool, post_id: int) -> Row | None:
    row = await db.fetchrow(f"SELECT {POST_COLUMNS} FROM posts WHERE id = $1", post_id)
    return public(row) if row else None


async def by_ids(db: asyncpg.Pool, ids: Sequence[int]) -> list[Row]:
    """The posts with these ids, in the order asked; missing ones left out."""
    rows = await db.fetch(
        f"SELECT {POST_COLUMNS} FROM posts JOIN unnest($1::bigint[]) WITH ORDINALITY"
        " AS asked (wanted, position) ON id = asked.wanted ORDER BY asked.position",
        list(ids),
    )
    return [public(row) for row in rows]


async def by_authors(
    db: asyncpg.Pool, author_ids: Sequence[int], before: int | None, limit: int
) -> list[Row]:
    """These authors' posts older than `before`, newest first (posts_author_idx)."""
    rows = await db.fetch(
        f"SELECT {POST_COLUMNS} FROM posts WHERE author_id = ANY($1::bigint[])"
        " AND id < $2 ORDER BY id DESC LIMIT $3",
        list(author_ids),
        before if before is not None else 2**63 - 1,
        limit,
    )
    return [public(row) for row in rows]


async def delete(db: asyncpg.Pool, stream: str, post_id: int, caller_id: int) -> int | None:
    """Delete the post (and its short links) with its post.deleted event if the caller
    wrote it. Returns its author's id (the caller's when deleted), None if it is missing."""
    async with db.acquire() as conn, conn.transaction():
        author_id = await conn.fetchval(
            "SELECT author_id FROM posts WHERE id = $1 FOR UPDATE", post_id
        )
        if author_id is None or author_id != caller_id:
            return author_id
        await conn.execute("DELETE FROM posts WHERE id = $1", post_id)
        await outbox.write(
            conn,
            stream,
            "post.deleted",
            post_id,
            {"post_id": post_id, "author_id": author_id},
        )
    return author_id


async def link_target(db: asyncpg.Pool, code: str) -> str | None:
    return await db.fetchval("SELECT url FROM short_links WHERE code = $1", code)

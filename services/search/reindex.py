"""`agora-reindex search [--from-scratch]`: rebuild search's index from its sources, for a
new index (search deployed after posts and users had data) or a corrupted one.

It reads only the public APIs: every account from users (pages of 100), then every
account's posts from posts (`?author_ids=` in groups, pages of 800, newest first), and
indexes them in batches, while search keeps serving and consuming events. Then it
removes what it did not see again (rows indexed before it started, and not by an event
since): posts and users that no longer exist. Deleted posts keep their tombstones, so a
post read just before its deletion is not brought back. `--from-scratch` empties the
index first (searches find less until it ends). Run it where search runs, with search's
settings (DATABASE_URL, POSTS_URL, USERS_URL): `kubectl exec deploy/search --
agora-reindex search`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg

from services.kit.config import load_settings
from services.kit.http_client import HttpClient, Upstream, default_policy

from . import store
from .app import Settings

log = logging.getLogger("agora.reindex")
USERS_PAGE = 100  # users' largest page
AUTHORS_PER_CALL = 500  # posts takes 1,000; this keeps the URL short
POSTS_PAGE = 800  # posts' largest page by authors


async def _json(client: HttpClient, upstream: str, path: str, params: dict[str, str]) -> dict:
    answer = await client.get(upstream, path, params=params)
    if answer.status != 200:
        raise RuntimeError(f"{upstream} answered {answer.status} to {path} {params}")
    return answer.json()


async def accounts(client: HttpClient) -> AsyncIterator[list[dict]]:
    offset = 0
    while True:
        page = await _json(
            client, "users", "/api/v1/users", {"limit": str(USERS_PAGE), "offset": str(offset)}
        )
        yield [user for user in page["items"] if user.get("username")]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return


async def posts_of(client: HttpClient, author_ids: list[int]) -> AsyncIterator[list[dict]]:
    before: str | None = None
    while True:
        params = {"author_ids": ",".join(map(str, author_ids)), "limit": str(POSTS_PAGE)}
        if before:
            params["before"] = before
        page = await _json(client, "posts", "/api/v1/posts", params)
        if page["items"]:
            yield page["items"]
        before = page.get("next")
        if not before or not page["items"]:
            return


async def reindex(settings: Settings, *, from_scratch: bool = False) -> dict[str, int]:
    assert settings.database_url
    db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    policy = default_policy(settings)
    service = settings.service_name
    upstreams = {
        "users": Upstream(service, "users", settings.users_url, policy),
        "posts": Upstream(service, "posts", settings.posts_url, policy),
    }
    stats = {"users": 0, "posts": 0, "removed_posts": 0, "removed_users": 0}
    try:
        async with aiohttp.ClientSession() as session:
            client = HttpClient(session, upstreams)
            if from_scratch:
                await store.clear(db)
            started = await store.reindex_started(db)
            author_ids: list[int] = []
            async for users in accounts(client):
                for user in users:
                    await store.index_user(db, user)
                stats["users"] += len(users)
                author_ids += [user["id"] for user in users]
            for start in range(0, len(author_ids), AUTHORS_PER_CALL):
                async for posts in posts_of(client, author_ids[start : start + AUTHORS_PER_CALL]):
                    stats["posts"] += await store.index_posts(db, posts)
            stats["removed_posts"], stats["removed_users"] = await store.sweep(db, started)
    finally:
        await db.close()
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agora-reindex", description=__doc__.split("\n\n")[0])
    parser.add_argument("service", choices=["search"], help="the service whose index to rebuild")
    parser.add_argument("--from-scratch", action="store_true", help="empty the index first")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings(Settings, service_name="search")
    began = time.monotonic()
    stats = asyncio.run(reindex(settings, from_scratch=args.from_scratch))
    took = time.monotonic() - began
    print(
        f"reindexed {stats['users']} users and {stats['posts']} posts in {took:.1f} s;"
        f" removed {stats['removed_posts']} posts and {stats['removed_users']} users"
        " no longer there",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

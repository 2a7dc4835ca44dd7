"""Reading timelines: a page of post ids, merged with what is merged at read time, and
hydrated in one batch call to posts (through a short-lived cache of hot posts)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from prometheus_client import Counter

from services.kit.counts import with_fields

from .sources import Sources
from .store import Timelines

REBUILDS = Counter(
    "timeline_rebuilds_total", "Home timelines rebuilt from posts and graph (found missing)."
)
POST_CACHE = Counter(
    "timeline_post_cache_total", "Posts hydrated, by where they came from.", ("outcome",)
)
_HIT, _MISS, _DELETED = (POST_CACHE.labels(o) for o in ("hit", "miss", "deleted"))


@dataclass(frozen=True)
class ReadSettings:
    cap: int
    fanout_max_followers: int
    post_cache_ttl: float
    big_followees_ttl: float


@dataclass(frozen=True)
class Page:
    posts: list[bytes]  # each post's JSON, newest first
    next: str | None
    ids: list[int]  # each post's id, in the same order

    def body(self) -> bytes:
        next_json = orjson.dumps(self.next)
        return b'{"items":[' + b",".join(self.posts) + b'],"next":' + next_json + b"}"

    def with_counts(self, counts: dict[int, dict]) -> Page:
        """The page with each post's likes and comments (services.kit.counts)."""
        posts = [with_fields(post, counts[i]) for post, i in zip(self.posts, self.ids, strict=True)]
        return Page(posts, self.next, self.ids)


def _next(ids: list[int], limit: int) -> str | None:
    """The cursor after a page: its last id, when the page was full (more may follow)."""
    return str(ids[-1]) if len(ids) == limit else None


class Reader:
    def __init__(self, timelines: Timelines, sources: Sources, settings: ReadSettings) -> None:
        self.timelines = timelines
        self.sources = sources
        self.settings = settings

    async def home(self, user_id: int, before: int | None, limit: int) -> Page:
        """The newest `limit` posts below `before` of the people `user_id` follows, and
        their own. Pages never overlap nor skip: the cursor is a post id, and ids grow
        with time, so posts arriving meanwhile sort above every page already read."""
        built, ids = await self.timelines.page(user_id, before, limit)
        if not built:
            await self.rebuild(user_id)
            _, ids = await self.timelines.page(user_id, before, limit)
        # Merged at read: your own posts (seen at once) and those of big accounts (not
        # fanned out). One call for both.
        authors = [user_id, *await self.big_followees(user_id)]
        merged = {
            post["id"]: orjson.dumps(post)
            for post in await self.sources.posts_by_authors(authors, before, limit)
        }
        candidates = sorted(set(ids) | merged.keys(), reverse=True)[:limit]
        stored = [post_id for post_id in candidates if post_id not in merged]
        hydrated = await self.hydrate(stored)
        gone = [post_id for post_id in stored if post_id not in hydrated]
        if gone:  # deleted posts: reads drop them, and this timeline forgets them
            await self.timelines.forget(user_id, gone)
        found = {**hydrated, **merged}
        shown = [post_id for post_id in candidates if post_id in found]
        return Page([found[post_id] for post_id in shown], _next(candidates, limit), shown)

    async def user(self, user_id: int, before: int | None, limit: int) -> Page:
        """One user's posts, newest first: one indexed query at posts."""
        posts = await self.sources.posts_by_authors([user_id], before, limit)
        ids = [post["id"] for post in posts]
        return Page([orjson.dumps(post) for post in posts], _next(ids, limit), ids)

    async def hydrate(self, post_ids: list[int]) -> dict[int, bytes]:
        """The posts that exist, by id, as JSON: cached ones from Redis, the others in
        one batch call to posts (then cached for POST_CACHE_TTL)."""
        found: dict[int, bytes] = {}
        misses: list[int] = []
        for post_id, body in zip(
            post_ids, await self.timelines.cached_posts(post_ids), strict=True
        ):
            if body is None:
                misses.append(post_id)
            elif body:
                found[post_id] = body
            else:
                _DELETED.inc()
        _HIT.inc(len(found))
        if misses:
            _MISS.inc(len(misses))
            fetched = {
                post["id"]: orjson.dumps(post) for post in await self.sources.posts_by_id(misses)
            }
            await self.timelines.cache_posts(fetched, self.settings.post_cache_ttl)
            found.update(fetched)
        return found

    async def big_followees(self, user_id: int) -> list[int]:
        """The accounts above FANOUT_MAX_FOLLOWERS that `user_id` follows (cached for
        BIG_FOLLOWEES_TTL; a follow or unfollow of theirs clears it)."""
        cached = await self.timelines.big_followees(user_id)
        if cached is not None:
            return cached
        ids = await self.sources.big_followee_ids(user_id, self.settings.fanout_max_followers + 1)
        await self.timelines.remember_big_followees(user_id, ids, self.settings.big_followees_ttl)
        return ids

    async def rebuild(self, user_id: int) -> None:
        """A home timeline from its sources: the newest posts of everyone followed but
        the big accounts (merged at read anyway). Added to what the set holds, never
        replacing it: a post fanned out meanwhile stays."""
        big = set(await self.big_followees(user_id))
        authors = [i for i in await self.sources.followee_ids(user_id) if i not in big]
        posts = await self.sources.posts_by_authors(authors, None, self.settings.cap)
        await self.timelines.build(user_id, [post["id"] for post in posts])
        REBUILDS.inc()

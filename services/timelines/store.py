"""Timelines in Redis: the keys, and the few scripts that change them atomically.

A home timeline is a sorted set per user, score and member = post id (ids sort by time
and stay below 2^53, so a score holds one exactly), trimmed to the newest `cap`. Redis is
a cache: a timeline that is missing is rebuilt from posts and graph. To tell "missing"
from "empty", a built timeline holds a sentinel member "0" (score 0, below every post
id): a set without it was never built (Redis restarted, the key evicted) or holds only
what fan-out added since; the next read rebuilds it and adds the sentinel. Fan-out adds
to a timeline whether or not it exists, so a post fanned out while a rebuild reads its
snapshot is never lost (both only ever add: the rebuild is a union).

Every write is idempotent: adding a member that is there, or removing one that is not,
changes nothing, so a redelivered event changes nothing either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

SENTINEL = "0"
PREFIX = "timeline"

# Add one post to every timeline in KEYS, keeping the newest ARGV[2] posts of each
# (rank 0 is the sentinel, never trimmed).
_FAN_OUT = """
local id, cap = ARGV[1], tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, id, id)
  redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1))
end
return #KEYS
"""

# Remove one post from every timeline in KEYS.
_REMOVE_EVERYWHERE = """
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return #KEYS
"""

# A timeline built: add the posts ARGV[2..] and the sentinel, trim to ARGV[1].
_BUILD = """
local cap = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i]) end
redis.call('ZADD', KEYS[1], 0, '0')
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(cap + 1))
return 1
"""

# Follow (ARGV[3] = 'follow': add the followee's posts ARGV[6..]) or unfollow (remove
# them), unless the guard KEYS[2] records a later event of the same pair: consumers run
# in parallel, so an unfollow may be processed before the follow that preceded it, and
# the follow's backfill must then not bring the posts back. Events are ordered by their
# stream entry id (ARGV[1] ms, ARGV[2] sequence).
_FOLLOW = """
local ms, seq = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = redis.call('HMGET', KEYS[2], 'ms', 'seq')
if last[1] then
  local last_ms, last_seq = tonumber(last[1]), tonumber(last[2])
  if last_ms > ms or (last_ms == ms and last_seq > seq) then return 0 end
end
redis.call('HSET', KEYS[2], 'ms', ARGV[1], 'seq', ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
if ARGV[3] == 'follow' then
  for i = 6, #ARGV do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i]) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[4]) + 1))
else
  for i = 6, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 1
"""

GUARD_SECONDS = 86400  # how long a follow's last event is remembered (reorderings take ms)
DONE_SECONDS = 86400  # how long a fanned-out post is remembered (redeliveries skip it)


def home_key(user_id: int) -> str:
    return f"{PREFIX}:home:{user_id}"


def post_key(post_id: int) -> str:
    return f"{PREFIX}:post:{post_id}"


def big_key(user_id: int) -> str:
    return f"{PREFIX}:big-followees:{user_id}"


BIG_ACCOUNTS = f"{PREFIX}:big-accounts"  # authors fan-out found above the threshold


def done_key(post_id: int) -> str:
    return f"{PREFIX}:fanned-out:{post_id}"


def guard_key(follower_id: int, followee_id: int) -> str:
    return f"{PREFIX}:follow:{follower_id}:{followee_id}"


class Timelines:
    """The Redis side of timelines, for one worker."""

    def __init__(self, redis: aioredis.Redis, cap: int) -> None:
        self.redis = redis
        self.cap = cap
        self._fan_out = redis.register_script(_FAN_OUT)
        self._remove_everywhere = redis.register_script(_REMOVE_EVERYWHERE)
        self._build = redis.register_script(_BUILD)
        self._follow = redis.register_script(_FOLLOW)

    # ------------------------------------------------------------ reading

    async def page(self, user_id: int, before: int | None, limit: int) -> tuple[bool, list[int]]:
        """(built, the newest `limit` post ids below `before`) of a home timeline."""
        key = home_key(user_id)
        top = f"({before}" if before is not None else "+inf"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(key, SENTINEL)
            pipe.zrevrangebyscore(key, top, f"({SENTINEL}", start=0, num=limit)
            built, ids = await pipe.execute()
        return built is not None, [int(member) for member in ids]

    async def build(self, user_id: int, post_ids: Sequence[int]) -> None:
        await self._build(keys=[home_key(user_id)], args=[self.cap, *post_ids])

    async def forget(self, user_id: int, post_ids: Iterable[int]) -> None:
        """Drop posts that no longer exist from one timeline (found out by a read)."""
        members = [str(post_id) for post_id in post_ids]
        if members:
            await self.redis.zrem(home_key(user_id), *members)

    async def lowest(self, user_id: int) -> int | None:
        """The oldest post id a home timeline holds (None: it holds none)."""
        found = await self.redis.zrangebyscore(
            home_key(user_id), f"({SENTINEL}", "+inf", start=0, num=1
        )
        return int(found[0]) if found else None

    # ------------------------------------------------------------ fan-out

    async def fan_out(self, post_id: int, user_ids: Sequence[int]) -> None:
        if user_ids:
            await self._fan_out(keys=[home_key(u) for u in user_ids], args=[post_id, self.cap])

    async def remove_everywhere(self, post_id: int, user_ids: Sequence[int]) -> None:
        if user_ids:
            await self._remove_everywhere(keys=[home_key(u) for u in user_ids], args=[post_id])

    async def follow(
        self, entry_id: str, follower_id: int, followee_id: int, kind: str, post_ids: Sequence[int]
    ) -> bool:
        """Apply a follow or unfollow of one pair (see _FOLLOW); False when a later event
        of the pair had been applied already."""
        ms, _, seq = entry_id.partition("-")
        applied = await self._follow(
            keys=[home_key(follower_id), guard_key(follower_id, followee_id)],
            args=[int(ms), int(seq or 0), kind, self.cap, GUARD_SECONDS, *post_ids],
        )
        return bool(applied)

    async def was_fanned_out(self, post_id: int) -> bool:
        return bool(await self.redis.exists(done_key(post_id)))

    async def mark_fanned_out(self, post_id: int) -> None:
        await self.redis.set(done_key(post_id), 1, ex=DONE_SECONDS)

    # ------------------------------------------------------------ caches

    async def big_followees(self, user_id: int) -> list[int] | None:
        """The cached big accounts a user follows (None: not cached)."""
        cached = await self.redis.get(big_key(user_id))
        if cached is None:
            return None
        return [int(part) for part in cached.split(b",") if part]

    async def remember_big_followees(self, user_id: int, ids: Sequence[int], ttl: float) -> None:
        await self.redis.set(big_key(user_id), ",".join(map(str, ids)), px=int(ttl * 1000))

    async def forget_big_followees(self, *user_ids: int) -> None:
        if user_ids:
            await self.redis.delete(*(big_key(user_id) for user_id in user_ids))

    async def mark_big(self, author_id: int, big: bool) -> bool:
        """Record whether fan-out takes an author to be big; True when that changed."""
        if big:
            return bool(await self.redis.sadd(BIG_ACCOUNTS, author_id))
        return bool(await self.redis.srem(BIG_ACCOUNTS, author_id))

    async def cached_posts(self, post_ids: Sequence[int]) -> list[bytes | None]:
        """Each post's cached JSON; b"" for a post known deleted, None when not cached."""
        if not post_ids:
            return []
        return await self.redis.mget([post_key(post_id) for post_id in post_ids])

    async def cache_posts(self, posts: dict[int, bytes], ttl: float) -> None:
        """Cache posts for `ttl` seconds. NX: never over a deleted post's tombstone, which
        a read that fetched the post just before it was deleted would otherwise replace."""
        if not posts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for post_id, body in posts.items():
                pipe.set(post_key(post_id), body, px=int(ttl * 1000), nx=True)
            await pipe.execute()

    async def tombstone(self, post_id: int) -> None:
        """A deleted post: hydration leaves it out from now on, whatever the cache held."""
        await self.redis.set(post_key(post_id), b"", ex=DONE_SECONDS)

"""Limits on attempts, counted in Redis (shared by every replica), and who the client is.

`AttemptLimiter` counts attempts per key in fixed windows: each attempt increments its
keys' counters first (atomically, so parallel attempts are counted, never slipped through
between a check and a count), and an attempt that finds a counter over its limit is
refused with the seconds until that window ends. An attempt that succeeds can be taken
back (`forgive`), so only failures use up the budget: users' failed logins per username
and per client (services/users/views.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from .errors import ApiError


def client_address(request: web.Request, trusted_proxies: int) -> str:
    """The client's address: X-Forwarded-For's entry added by the outermost of the
    `trusted_proxies` proxies in front of the service (the ingress appends the address
    it saw; entries left of it are the client's own word and could be anything), or the
    peer address without proxies (or without the header)."""
    forwarded = [
        part.strip()
        for value in request.headers.getall("X-Forwarded-For", [])
        for part in value.split(",")
        if part.strip()
    ]
    if trusted_proxies > 0 and len(forwarded) >= trusted_proxies:
        return forwarded[-trusted_proxies]
    return request.remote or "unknown"


@dataclass(frozen=True)
class Limit:
    key: str  # the Redis key of the counter, e.g. "login-failures:user:ana"
    limit: int  # attempts allowed per window


# DECR only a counter that still exists: one whose window ended must not come back
# negative and without an expiry.
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then redis.call('decr', key) end
end
"""


class AttemptLimiter:
    def __init__(self, redis: aioredis.Redis, *, window: int) -> None:
        self.redis = redis
        self.window = window
        self._give_back = redis.register_script(_GIVE_BACK)

    async def attempt(self, limits: Sequence[Limit]) -> None:
        """Count one attempt against every limit; 429 with Retry-After if any is over."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for limit in limits:
                pipe.incr(limit.key)
                pipe.expire(limit.key, self.window, nx=True)
            replies = await pipe.execute()
        counts = replies[::2]
        over = [limit for limit, count in zip(limits, counts, strict=True) if count > limit.limit]
        if over:
            ttls = [await self.redis.ttl(limit.key) for limit in over]
            retry_after = max(1, *ttls)
            raise ApiError(
                429,
                f"Too many failed attempts; try again in {retry_after} s",
                code="too_many_attempts",
                headers={"Retry-After": str(retry_after)},
            )

    async def forgive(self, reset: Sequence[str] = (), give_back: Sequence[str] = ()) -> None:
        """After a success: counters in `reset` start again, those in `give_back` lose
        the attempt just counted."""
        if reset:
            await self.redis.delete(*reset)
        if give_back:
            await self._give_back(keys=list(give_back))

"""The count of every replica's clients, kept in Redis.

Each worker of each replica owns one entry (`<host>:<port>/<pid>` -> its count of
counter connections) that lives PRESENCE_TTL / 2 seconds and is refreshed every
PRESENCE_TTL / 4, or at once (coalesced) when its count changes. Every refresh, of any
worker, first drops the entries that expired, so a replica that was SIGKILLed stops
being counted within 3/4 of PRESENCE_TTL. All of it is one Lua script (presence.lua):
atomic, one round trip, timed by Redis' clock. A change bumps a sequence number and is
published on a channel with the full list of entries, so every worker learns the new
total from one message and can ignore an older list that arrives late. The sequence is
Redis' clock in microseconds (or one more than the last), so it keeps growing when
Redis loses the keys under subscribed workers (FLUSHALL): a counter starting again at 1
was ignored by every worker as "older" until it passed the old value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import redis.asyncio as aioredis

SCRIPT = (Path(__file__).parent / "presence.lua").read_text()


@dataclass(frozen=True)
class Entries:
    """What Redis holds: a sequence number and each live worker's count."""

    sequence: int
    counts: dict[str, int]

    @classmethod
    def parse(cls, flat: list[object]) -> Entries:
        """[sequence, id1, count1, id2, count2, ...], as the script returns and publishes."""
        values = [v.decode() if isinstance(v, bytes) else v for v in flat]
        pairs = values[1:]
        counts = {str(pairs[i]): int(pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)}
        return cls(int(values[0]), counts)

    @classmethod
    def from_message(cls, data: bytes) -> Entries:
        return cls.parse(orjson.loads(data))


class Presence:
    def __init__(self, redis: aioredis.Redis, worker_id: str, *, key: str, ttl: float) -> None:
        self.worker_id = worker_id
        self.channel = f"{key}:changes"
        self.keys = [f"{key}:counts", f"{key}:expiry", f"{key}:sequence"]
        self.lifetime = ttl / 2
        self.refresh_seconds = ttl / 4
        self._script = redis.register_script(SCRIPT)

    async def _run(self, count: str) -> Entries:
        flat = await self._script(
            keys=self.keys, args=[self.worker_id, count, self.lifetime, self.channel]
        )
        return Entries.parse(flat)

    async def announce(self, count: int) -> Entries:
        """Store this worker's count (refreshing its expiry); the entries after it."""
        return await self._run(str(count))

    async def read(self) -> Entries:
        return await self._run("")

    async def withdraw(self) -> Entries:
        """This worker stops: its entry goes now rather than when it expires."""
        return await self._run("-")

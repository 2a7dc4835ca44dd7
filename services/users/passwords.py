"""Password hashes: argon2id (argon2-cffi), computed off the event loop.

Parameters (PASSWORD_HASH_*; values.yaml keeps the defaults): time cost 2, memory 19 MiB,
parallelism 1, OWASP's recommended minimum for argon2id. On these 2-core machines one
hash takes about 32 ms (BENCHMARKS.md, Auth: measured, not guessed); parallelism 1
because two cores serve two gunicorn workers, each hashing on one thread. The loop never
waits on a hash: each runs in a worker's own thread pool of PASSWORD_HASH_THREADS (1),
so a burst of logins queues there instead of stalling every other request, and memory
stays bounded (19 MiB per thread).

A login for a username that does not exist is checked against a dummy hash made at
start, so it takes as long as a wrong password does: the answer time does not tell
which usernames exist.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.kit.keys import SETTINGS

from .keys import PASSWORDS

T = TypeVar("T")


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, threads: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self.dummy = self.hasher.hash(secrets.token_urlsafe(16))

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; None (no such user) checks the dummy."""
        return await self._run(self._verify, stored, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            self.hasher.verify(stored or self.dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """A hash made with other parameters (they were raised since): hash again."""
        return self.hasher.check_needs_rehash(stored)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


async def passwords_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    passwords = Passwords(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
        threads=settings.password_hash_threads,
    )
    app[PASSWORDS] = passwords
    yield
    passwords.close()

"""Liveness, readiness and the draining state.

/healthz answers while the loop runs and never looks at dependencies. /readyz is false
until startup finished and again from the moment SIGTERM arrives. Dependencies that
every replica shares (PostgreSQL, Redis) are reported in its body but never fail it:
one database blip must not take every replica out of every Service at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from .keys import READINESS

Check = Callable[[], Awaitable[object]]
CHECK_TIMEOUT = 1.0


class Readiness:
    def __init__(self) -> None:
        self.started = False
        self.draining = False
        self.checks: dict[str, Check] = {}

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def report(self) -> dict[str, str]:
        async def run(check: Check) -> str:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await check()
            except Exception as exc:  # a report, not a failure: say what went wrong
                return f"error: {type(exc).__name__}: {exc}"[:200]
            return "ok"

        names = list(self.checks)
        results = await asyncio.gather(*(run(self.checks[name]) for name in names))
        return dict(zip(names, results, strict=True))


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def handle_healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def handle_readyz(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    if not readiness.ready:
        state = "draining" if readiness.draining else "starting"
        return _json({"status": state}, status=503)
    return _json({"status": "ready", "dependencies": await readiness.report()})


async def readiness_ctx(app: web.Application) -> AsyncIterator[None]:
    """Added last to cleanup_ctx: everything before it has started when it runs."""
    readiness = app[READINESS]
    readiness.started = True
    yield
    readiness.draining = True

"""Background loops of a service (relays, consumers, reconcilers), owned by its app.

A loop is `async def loop(app, stopping) -> None` that works until the asyncio.Event
`stopping` is set and then returns, finishing what it holds first. `background(name,
loop)` is the cleanup context that runs it: started after the kit's pools and clients,
restarted (after a pause, logged) if it fails unexpectedly, and on shutdown asked to stop,
then cancelled if it has not stopped within a few seconds, so the worker always exits
inside its grace period (SHUTDOWN_GRACE) even when a dependency hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .keys import SETTINGS

log = logging.getLogger("agora.background")

Loop = Callable[[web.Application, asyncio.Event], Awaitable[None]]
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

STOP_PATIENCE = 5.0  # seconds a loop gets to return after `stopping` is set
RESTART_PAUSE = 1.0


async def sleep_unless(
    stopping: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
) -> bool:
    """Sleep `seconds`, waking early when `stopping` (or `wake`) is set; True if stopping."""
    if stopping.is_set():
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in (stopping, wake) if event]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stopping.is_set()


async def _supervise(name: str, loop: Loop, app: web.Application, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await loop(app, stopping)
        except Exception:
            log.exception("background loop %s failed; restarting", name)
            await sleep_unless(stopping, RESTART_PAUSE)


def background(name: str, loop: Loop) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        task = asyncio.create_task(_supervise(name, loop, app, stopping), name=name)
        yield
        stopping.set()
        patience = min(STOP_PATIENCE, app[SETTINGS].shutdown_grace / 2)
        done, _ = await asyncio.wait({task}, timeout=patience)
        if done:
            log.info("background loop %s stopped", name)
        else:
            log.warning("background loop %s did not stop in %.1f s; cancelling", name, patience)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    ctx.__name__ = f"background_{name}"
    return ctx


def every(name: str, seconds: float, action: Callable[[], None]) -> CleanupCtx:
    """A cleanup context calling `action()` every `seconds`, and once more on shutdown
    (flushing what a worker buffered, say)."""

    async def repeat(app: web.Application, stopping: asyncio.Event) -> None:
        while not await sleep_unless(stopping, seconds):
            action()
        action()

    return background(name, repeat)

"""The gunicorn worker: aiohttp's uvloop worker with a drain period on SIGTERM."""

from __future__ import annotations

from types import FrameType

from aiohttp import web
from aiohttp.worker import GunicornUVLoopWebWorker

from .keys import READINESS, SETTINGS


class AgoraWorker(GunicornUVLoopWebWorker):  # type: ignore[misc]
    """SIGTERM: readiness turns false at once and requests keep being served for
    DRAIN_SECONDS (so load balancers notice and move away), then the listener closes,
    in-flight requests finish and the worker exits 0 within gunicorn's graceful timeout.
    """

    _draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            return
        self._draining = True
        app = self.wsgi
        delay = 0.0
        if isinstance(app, web.Application):
            app[READINESS].draining = True
            delay = app[SETTINGS].drain_seconds
        self.log.info("SIGTERM: draining for %.1f s, then stopping", delay)
        self.loop.call_later(delay, self._stop_serving)

    def _stop_serving(self) -> None:
        self.alive = False
        self._notify_waiter_done()

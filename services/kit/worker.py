"""The gunicorn worker: aiohttp's uvloop worker with a graceful drain on SIGTERM."""

from __future__ import annotations

import ctypes
import signal
import socket
import struct
from types import FrameType
from typing import Any

from aiohttp import web
from aiohttp.worker import GunicornUVLoopWebWorker

from .keys import READINESS, SETTINGS

SO_ATTACH_FILTER = 26  # Linux
# Time for connections the kernel accepted before the filter to be picked up.
ACCEPT_QUEUE_FLUSH = 0.2


def refuse_new_connections(listener: socket.socket) -> bool:
    """Drop every new connection attempt on a listening socket, keep the queued ones.

    Closing a listener resets the connections waiting in its accept queue: a proxy that
    had already sent a request on one sees the request fail, and may not retry a POST.
    A socket filter that drops all packets makes new SYNs go unanswered instead (the
    proxy's connect times out and it tries another replica; nothing was sent), while
    the queue empties; then the listener can close without resetting anything.
    """
    drop_all = (ctypes.c_ubyte * 8).from_buffer_copy(struct.pack("HBBI", 0x06, 0, 0, 0))
    program = struct.pack("HL", 1, ctypes.addressof(drop_all))  # struct sock_fprog
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
    except OSError:
        return False  # not Linux: the listener just closes
    return True


class AgoraWorker(GunicornUVLoopWebWorker):  # type: ignore[misc]
    """SIGTERM: readiness turns false at once and requests keep being served for
    DRAIN_SECONDS (answers say `Connection: close`), so load balancers move away; then
    new connections are refused without resetting queued ones, the listener closes,
    in-flight requests finish and the worker exits 0 within gunicorn's graceful timeout.
    """

    _draining = False
    _stop_requested = False

    def catch_early_stop(self, arbiter: Any) -> None:
        """Right after the fork (gunicorn's post_fork), before the loop's handlers exist:
        a SIGTERM from here on, or one queued by the master's handler we inherited, is
        remembered and honoured once the worker runs, instead of being lost (the master
        would then wait out the whole graceful timeout and SIGKILL the worker)."""

        def remember(signum: int, frame: FrameType | None) -> None:
            self._stop_requested = True

        signal.signal(signal.SIGTERM, remember)
        pending = arbiter.SIG_QUEUE  # this process's copy of the master's queue
        while not pending.empty():
            if pending.get_nowait() == signal.SIGTERM:
                self._stop_requested = True

    def init_signals(self) -> None:
        super().init_signals()
        if self._stop_requested:
            self.loop.call_soon(self.handle_exit, signal.SIGTERM, None)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            return
        self._draining = True
        factory = getattr(self.wsgi, "__self__", None)  # serve.RunnerFactory
        app = getattr(factory, "app", None)
        delay = 0.0
        if isinstance(app, web.Application) and READINESS in app:
            app[READINESS].draining = True
            delay = app[SETTINGS].drain_seconds
        self.log.info("SIGTERM: draining for %.1f s, then stopping", delay)
        self.loop.call_later(delay, self._refuse_new_connections)

    def _refuse_new_connections(self) -> None:
        refused = all(refuse_new_connections(listener) for listener in self.sockets)
        self.loop.call_later(ACCEPT_QUEUE_FLUSH if refused else 0.0, self._stop_serving)

    def _stop_serving(self) -> None:
        self.alive = False
        self._notify_waiter_done()

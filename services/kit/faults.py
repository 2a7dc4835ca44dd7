"""Fault injection: a share of a service's requests answered 500, or answered late.

For making a bad canary on purpose (docs/canary.md): the canary's env sets

    FAULT_ERROR_RATE    share of requests answered 500 `injected_fault` (0 to 1)
    FAULT_LATENCY_MS    milliseconds added before the handler runs
    FAULT_LATENCY_RATE  share of requests delayed (1: every one)

All off by default. The chart refuses any of them unless `faultInjection.allowed` is true.
Only the service's own API routes are affected (never /healthz, /readyz or /metrics, so a
faulty replica stays in its Service and is scraped), and the failures pass through the
kit's instrumentation like real ones: they count as 5xx and as latency.

Off, this costs nothing per request: the handlers are wrapped at registration only when
a setting is not zero (BENCHMARKS.md, Canary).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .config import KitSettings
from .errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CODE = "injected_fault"


@dataclass(frozen=True)
class Faults:
    error_rate: float = 0.0
    latency_ms: float = 0.0
    latency_rate: float = 1.0

    @classmethod
    def from_settings(cls, settings: KitSettings) -> Faults:
        return cls(
            settings.fault_error_rate, settings.fault_latency_ms, settings.fault_latency_rate
        )

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or (self.latency_ms > 0 and self.latency_rate > 0)

    def wrap(self, handler: Handler) -> Handler:
        """The handler with the faults in front; the handler itself when there are none."""
        if not self.active:
            return handler
        error_rate, latency_rate = self.error_rate, self.latency_rate
        delay = self.latency_ms / 1000 if self.latency_rate > 0 else 0.0
        draw = random.random

        async def faulty(request: web.Request) -> web.StreamResponse:
            if delay and (latency_rate >= 1 or draw() < latency_rate):
                await asyncio.sleep(delay)
            if error_rate and draw() < error_rate:
                raise ApiError(500, "Injected fault (FAULT_ERROR_RATE)", code=CODE)
            return await handler(request)

        faulty.__name__ = getattr(handler, "__name__", "handler")
        return faulty


NO_FAULTS = Faults()

"""facts against a real local upstream with catfact.ninja's GET /fact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

from services.facts.app import Settings, create_app


def fact(text: str) -> web.Response:
    return web.json_response({"fact": text, "length": len(text)})


def distinct(call: int) -> web.Response:
    return fact(f"Cats fact number {call}.")


def failure(call: int) -> web.Response:
    return web.json_response({"error": "down"}, status=503)


class FakeCatFacts:
    """GET /fact: the n-th call (counted on arrival, from 1) is answered by `answer(n)`
    after `delay(n)` seconds, or never when `hangs(n)`. Counts calls and the peak of
    calls in flight."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.answer: Callable[[int], web.Response] = distinct
        self.delay: Callable[[int], float] = lambda call: 0.0
        self.hangs: Callable[[int], bool] = lambda call: False
        self.released = asyncio.Event()  # set at teardown: hanging calls end

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/fact", self.fact)
        return app

    async def fact(self, request: web.Request) -> web.Response:
        self.calls += 1
        call = self.calls
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hangs(call):
                await self.released.wait()
            await asyncio.sleep(self.delay(call))
            return self.answer(call)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def upstream(aiohttp_server):
    fake = FakeCatFacts()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    fake.released.set()


@pytest.fixture
def facts_client(aiohttp_client, upstream):
    """facts pointed at the fake upstream; keyword arguments override its settings.
    The breaker is out of the way unless a test sets BREAKER_FAILURES."""

    async def make(**overrides):
        settings = Settings(
            service_name="facts",
            facts_upstream_url=upstream.url,
            **{"breaker_failures": 1000, **overrides},
        )
        return await aiohttp_client(create_app(settings))

    return make

"""pipeline against real local upstreams: calc's own app, and a fake facts/factcheck
pair speaking issue 6's API (both real aiohttp servers on 127.0.0.1)."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from services.calc.app import create_app as create_calc
from services.pipeline.app import Settings, create_app
from tests.conftest import free_port
from tests.unit.conftest import settings_for

FACTS = [
    "Cats sleep 70% of their lives.",
    "A group of kittens is called a kindle.",
    "A cat has 32 muscles in each ear.",
    "Dogs were domesticated before cats.",
    "Lions live in prides.",
]
ABOUT_CATS = re.compile(r"\bcats?\b", re.IGNORECASE)


class FakeCats:
    """GET /api/v1/cats?amount=N and POST /api/v1/facts, as issue 6 describes them."""

    def __init__(self) -> None:
        self.amounts: list[str] = []
        self.checked: list[list[str]] = []
        self.facts_status = 200

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/cats", self.facts)
        app.router.add_post("/api/v1/facts", self.factcheck)
        return app

    async def facts(self, request: web.Request) -> web.Response:
        self.amounts.append(request.query["amount"])
        if self.facts_status != 200:
            body = {"error": "No facts could be fetched", "code": "bad_gateway", "details": []}
            return web.json_response(body, status=self.facts_status)
        amount = int(request.query["amount"])
        facts = FACTS[:amount]
        return web.json_response({"facts": facts, "requested": amount, "returned": len(facts)})

    async def factcheck(self, request: web.Request) -> web.Response:
        facts = (await request.json())["facts"]
        self.checked.append(facts)
        return web.json_response({"facts": [f for f in facts if ABOUT_CATS.search(f)]})


@pytest.fixture
async def calc_url(aiohttp_server) -> str:
    server = await aiohttp_server(create_calc(settings_for("calc")))
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def fake_cats(aiohttp_server) -> FakeCats:
    fake = FakeCats()
    fake.server = await aiohttp_server(fake.app())
    fake.url = str(fake.server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def pipeline_client(aiohttp_client, calc_url):
    """Builds a pipeline client; keyword arguments override its settings."""

    async def make(**overrides):
        options = {"calc_url": calc_url, "upstream_retries": 1, **overrides}
        settings = Settings(service_name="pipeline", **options)
        return await aiohttp_client(create_app(settings))

    return make


@pytest.fixture
async def client(pipeline_client):
    return await pipeline_client()


@pytest.fixture
def unreachable() -> str:
    return f"http://127.0.0.1:{free_port()}"

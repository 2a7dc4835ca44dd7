"""factsource: the bundled facts, catfact's GET /fact and GET /facts, the latency."""

from __future__ import annotations

import math
import re

import pytest

from services.factsource import views
from services.factsource.app import Settings, create_app
from services.factsource.bundled import FACTS
from tests.unit.conftest import refused_setting

ABOUT_CATS = re.compile(r"\b(cats?|kittens?|felis|feline|felidae|tom|queen)\b|cat\b", re.I)


def test_at_least_200_distinct_facts():
    assert len(FACTS) >= 200
    assert len({fact.casefold() for fact in FACTS}) == len(FACTS)


@pytest.mark.parametrize("fact", FACTS)
def test_every_fact_is_a_short_sentence_about_cats(fact):
    assert fact == fact.strip() and 10 <= len(fact) <= 200
    assert fact[0].isupper() and fact.endswith(".")
    assert ABOUT_CATS.search(fact), fact


@pytest.fixture
def client(aiohttp_client):
    async def make(**overrides):
        return await aiohttp_client(create_app(Settings(service_name="factsource", **overrides)))

    return make


async def test_random_fact_has_catfacts_shape(client):
    api = await client()
    seen = set()
    for _ in range(30):
        response = await api.get("/fact")
        assert response.status == 200
        body = await response.json()
        assert body.keys() == {"fact", "length"}
        assert body["fact"] in FACTS and body["length"] == len(body["fact"])
        seen.add(body["fact"])
    assert len(seen) > 1  # random, not the same one every time


async def test_random_fact_respects_max_length(client):
    api = await client()
    shortest = min(len(fact) for fact in FACTS)
    for _ in range(10):
        body = await (await api.get("/fact", params={"max_length": str(shortest)})).json()
        assert body["length"] == shortest
    response = await api.get("/fact", params={"max_length": str(shortest - 1)})
    assert response.status == 404
    assert (await response.json())["code"] == "not_found"


async def test_first_page(client):
    api = await client()
    response = await api.get("/facts")
    body = await response.json()
    last = math.ceil(len(FACTS) / 10)
    assert body["current_page"] == 1 and body["per_page"] == 10
    assert body["data"] == [{"fact": f, "length": len(f)} for f in FACTS[:10]]
    assert body["from"] == 1 and body["to"] == 10
    assert body["total"] == len(FACTS) and body["last_page"] == last
    assert body["prev_page_url"] is None
    assert body["next_page_url"].endswith("/facts?page=2")
    assert body["last_page_url"].endswith(f"/facts?page={last}")
    assert body["first_page_url"].endswith("/facts?page=1")
    assert body["path"].endswith("/facts")


async def test_pages_cover_every_fact_once(client):
    api = await client()
    collected, url = [], "/facts?limit=37"
    while url:
        body = await (await api.get(url)).json()
        collected += [item["fact"] for item in body["data"]]
        url = body["next_page_url"] and "/facts?" + body["next_page_url"].split("?", 1)[1]
    assert collected == list(FACTS)


async def test_last_and_past_the_last_page(client):
    api = await client()
    limit = 100
    last = math.ceil(len(FACTS) / limit)
    body = await (await api.get("/facts", params={"limit": "100", "page": str(last)})).json()
    assert body["next_page_url"] is None
    assert body["prev_page_url"].endswith(f"page={last - 1}")
    assert body["to"] == len(FACTS) and len(body["data"]) == len(FACTS) - (last - 1) * limit
    past = await (await api.get("/facts", params={"limit": "100", "page": str(last + 1)})).json()
    assert past["data"] == [] and past["from"] is None and past["to"] is None


async def test_facts_max_length_filters_the_pages(client):
    api = await client()
    body = await (await api.get("/facts", params={"max_length": "40", "limit": "1000"})).json()
    assert body["total"] == len([f for f in FACTS if len(f) <= 40]) > 0
    assert all(item["length"] <= 40 for item in body["data"])


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/facts", {"limit": "0"}),
        ("/facts", {"limit": "1001"}),
        ("/facts", {"page": "0"}),
        ("/facts", {"page": "x"}),
        ("/fact", {"max_length": "0"}),
        ("/fact", {"max_length": "short"}),
    ],
)
async def test_bad_queries_are_400(client, path, params):
    api = await client()
    response = await api.get(path, params=params)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "validation_error"
    assert body["details"][0]["field"] == next(iter(params))


@pytest.mark.parametrize(("milliseconds", "expected"), [(0, []), (50, [0.05, 0.05])])
async def test_artificial_latency(client, monkeypatch, milliseconds, expected):
    pauses = []

    async def record(seconds):
        pauses.append(seconds)

    monkeypatch.setattr(views, "sleep", record)
    api = await client(artificial_latency_ms=milliseconds)
    assert (await api.get("/fact")).status == 200
    assert (await api.get("/facts")).status == 200
    assert pauses == expected


def test_a_bad_latency_setting_names_its_variable(monkeypatch, capsys):
    message = refused_setting(monkeypatch, capsys, Settings, "ARTIFICIAL_LATENCY_MS", "-5")
    assert "ARTIFICIAL_LATENCY_MS:" in message

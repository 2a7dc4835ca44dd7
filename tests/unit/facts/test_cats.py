"""GET /api/v1/cats: concurrency, retries, duplicates, partial and total failure."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from services.facts.app import CATFACT_NINJA, Settings
from services.facts.models import MAX_AMOUNT
from tests.conftest import free_port
from tests.unit.conftest import refused_setting

from .conftest import distinct, fact, failure


async def get_cats(client, amount, *, status=200):
    response = await client.get("/api/v1/cats", params={"amount": str(amount)})
    body = await response.json()
    assert response.status == status, body
    return body


def assert_consistent(body, requested):
    assert body["requested"] == requested
    assert body["returned"] == len(body["facts"]) == len(set(body["facts"]))
    assert body["missing"] == requested - body["returned"]
    assert body["upstream_calls"] == body["returned"] + body["failed_calls"] + body["duplicates"]


# ---------------------------------------------------------------- the answer


@pytest.mark.parametrize("amount", [1, 7, MAX_AMOUNT])
async def test_amount_distinct_facts_from_the_upstream(facts_client, upstream, amount):
    client = await facts_client()
    body = await get_cats(client, amount)
    assert sorted(body["facts"]) == sorted(f"Cats fact number {n}." for n in range(1, amount + 1))
    assert body["returned"] == amount and body["missing"] == 0
    assert upstream.calls == body["upstream_calls"] == amount
    assert_consistent(body, amount)


async def test_path_and_query_forms_answer_alike(facts_client, upstream):
    client = await facts_client()
    by_path = await (await client.get("/api/v1/cats/3")).json()
    by_query = await get_cats(client, 3)
    assert by_path.keys() == by_query.keys()
    assert by_path["returned"] == by_query["returned"] == 3
    assert upstream.calls == 6


async def test_facts_are_stripped_and_blank_ones_count_as_failed(facts_client, upstream):
    upstream.answer = lambda call: fact("   ") if call == 1 else fact(f"  Cat {call}  ")
    client = await facts_client(facts_concurrency=1)
    body = await get_cats(client, 2)
    assert body["facts"] == ["Cat 2", "Cat 3"]
    assert body["failed_calls"] == 1


# ---------------------------------------------------------------- concurrency


async def test_calls_in_flight_are_bounded_by_the_setting(facts_client, upstream):
    upstream.delay = lambda call: 0.2
    client = await facts_client(facts_concurrency=4)
    body = await get_cats(client, 12)
    assert body["returned"] == 12
    assert upstream.peak == 4  # reached, never passed


async def test_concurrency_one_is_sequential(facts_client, upstream):
    upstream.delay = lambda call: 0.02
    client = await facts_client(facts_concurrency=1)
    await get_cats(client, 5)
    assert upstream.peak == 1


async def test_no_more_calls_than_facts_wanted(facts_client, upstream):
    upstream.delay = lambda call: 0.1
    client = await facts_client(facts_concurrency=10)
    body = await get_cats(client, 3)
    assert upstream.calls == 3 and upstream.peak == 3
    assert body["returned"] == 3


async def test_the_bound_is_per_request(facts_client, upstream):
    upstream.delay = lambda call: 0.2
    client = await facts_client(facts_concurrency=3)
    first, second = await asyncio.gather(get_cats(client, 6), get_cats(client, 6))
    assert first["returned"] == second["returned"] == 6
    assert upstream.peak == 6


async def test_the_kit_bulkhead_bounds_calls_across_requests(facts_client, upstream):
    upstream.delay = lambda call: 0.05
    client = await facts_client(facts_concurrency=4, upstream_max_concurrent=2)
    first, second = await asyncio.gather(get_cats(client, 4), get_cats(client, 4))
    assert first["returned"] == second["returned"] == 4
    assert upstream.peak == 2


# ---------------------------------------------------------------- retries


async def test_failed_calls_are_retried(facts_client, upstream):
    upstream.answer = lambda call: failure(call) if call <= 3 else distinct(call)
    client = await facts_client(facts_concurrency=5, facts_retry_share=1.0)
    body = await get_cats(client, 5)
    assert body["returned"] == 5 and body["missing"] == 0
    assert body["failed_calls"] == 3
    assert upstream.calls == 8
    assert_consistent(body, 5)


async def test_retries_stop_at_the_budget_and_the_answer_is_partial(facts_client, upstream):
    # Every second call fails; the budget is ceil(10 x 0.2) = 2 retries.
    upstream.answer = lambda call: failure(call) if call % 2 == 0 else distinct(call)
    client = await facts_client(facts_concurrency=5, facts_retry_share=0.2)
    body = await get_cats(client, 10)
    assert upstream.calls == 12
    assert body["returned"] == 6 and body["missing"] == 4
    assert body["failed_calls"] == 6
    assert_consistent(body, 10)


async def test_no_retry_budget_means_no_retries(facts_client, upstream):
    upstream.answer = lambda call: failure(call) if call == 1 else distinct(call)
    client = await facts_client(facts_concurrency=1, facts_retry_share=0)
    body = await get_cats(client, 3)
    assert upstream.calls == 3
    assert body["returned"] == 2 and body["missing"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        web.Response(text="not json", content_type="application/json"),
        web.json_response({"facts": "wrong key"}),
        web.json_response({"fact": 42}),
        web.json_response(["a list"]),
        web.json_response({"error": "rate limited"}, status=429),
        web.json_response({"fact": "Cats fact, but 404"}, status=404),
    ],
    ids=["not-json", "no-fact", "fact-not-string", "not-object", "429", "404"],
)
async def test_unusable_answers_count_as_failed_calls(facts_client, upstream, bad):
    upstream.answer = lambda call: bad if call == 1 else distinct(call)
    client = await facts_client(facts_concurrency=1, facts_retry_share=1.0)
    body = await get_cats(client, 2)
    assert body["facts"] == ["Cats fact number 2.", "Cats fact number 3."]
    assert body["failed_calls"] == 1


async def test_a_slow_call_times_out_and_is_retried(facts_client, upstream):
    upstream.hangs = lambda call: call == 1
    client = await facts_client(facts_concurrency=3, upstream_timeout=0.2)
    body = await get_cats(client, 3)
    assert body["returned"] == 3
    assert body["failed_calls"] == 1
    assert upstream.calls == 4


# ---------------------------------------------------------------- duplicates


async def test_duplicates_are_replaced(facts_client, upstream):
    upstream.answer = lambda call: fact("Cats purr.") if call <= 3 else distinct(call)
    client = await facts_client(facts_concurrency=3)
    body = await get_cats(client, 3)
    assert sorted(body["facts"]) == ["Cats fact number 4.", "Cats fact number 5.", "Cats purr."]
    assert body["duplicates"] == 2
    assert upstream.calls == 5


async def test_duplicate_replacement_is_bounded(facts_client, upstream):
    upstream.answer = lambda call: fact("Cats purr.")  # the only fact it knows
    client = await facts_client(facts_concurrency=2, facts_duplicate_share=1.0)
    body = await get_cats(client, 5)
    assert body["facts"] == ["Cats purr."]
    assert body["returned"] == 1 and body["missing"] == 4
    assert body["duplicates"] == 9
    assert upstream.calls == 10  # 5 calls, then ceil(5 x 1.0) replacements


# ---------------------------------------------------------------- total failure


def assert_bad_gateway(body):
    assert body["code"] == "bad_gateway"
    assert "no usable fact" in body["error"]
    assert body["details"] == []


async def test_nothing_fetched_is_a_502(facts_client, upstream):
    upstream.answer = failure
    client = await facts_client(facts_concurrency=4, facts_retry_share=0.5)
    body = await get_cats(client, 4, status=502)
    assert_bad_gateway(body)
    assert upstream.calls == 6  # 4 calls, then ceil(4 x 0.5) retries


async def test_unreachable_upstream_is_a_502(aiohttp_client):
    from services.facts.app import create_app

    settings = Settings(service_name="facts", facts_upstream_url=f"http://127.0.0.1:{free_port()}")
    client = await aiohttp_client(create_app(settings))
    assert_bad_gateway(await get_cats(client, 3, status=502))


# ---------------------------------------------------------------- the kit breaker


async def test_open_breaker_fails_fast_and_later_requests_get_502(facts_client, upstream):
    upstream.answer = failure
    client = await facts_client(facts_concurrency=1, breaker_failures=3, breaker_cooldown=60)
    assert_bad_gateway(await get_cats(client, 10, status=502))
    assert upstream.calls == 3  # the other 7 calls and 2 retries failed without calling
    assert_bad_gateway(await get_cats(client, 10, status=502))
    assert upstream.calls == 3


async def test_breaker_opening_midway_leaves_a_partial_answer(facts_client, upstream):
    upstream.answer = lambda call: distinct(call) if call <= 4 else failure(call)
    client = await facts_client(facts_concurrency=1, breaker_failures=3, breaker_cooldown=60)
    body = await get_cats(client, 10)
    assert body["returned"] == 4 and body["missing"] == 6
    assert upstream.calls == 7
    assert_consistent(body, 10)


# ---------------------------------------------------------------- the request deadline


async def test_near_the_deadline_it_answers_with_what_arrived(facts_client, upstream):
    upstream.hangs = lambda call: call > 2
    client = await facts_client(facts_concurrency=5, request_timeout=1.0, upstream_timeout=30)
    body = await get_cats(client, 5)
    assert body["returned"] == 2 and body["missing"] == 3
    assert body["failed_calls"] == 3  # cut off, still in flight
    assert_consistent(body, 5)


# ---------------------------------------------------------------- bad amounts


# In digits (the document's integer): not " 5", "+5" or "1_0", which int() would read.
BAD_AMOUNTS = ["0", "-1", str(MAX_AMOUNT + 1), "abc", "1.5", " 5", "+5", "1_0",
               "\uff15", "", "9" * 5000]  # fmt: skip


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
async def test_bad_amount_in_query_is_a_400(facts_client, upstream, amount):
    client = await facts_client()
    response = await client.get("/api/v1/cats", params={"amount": amount})
    body = await response.json()
    assert response.status == 400, body
    assert body["code"] == "validation_error"
    assert body["details"][0]["field"] == "amount"
    assert body["details"][0]["location"] == "query"
    assert upstream.calls == 0


@pytest.mark.parametrize("amount", [a for a in BAD_AMOUNTS if a.strip() and "." not in a])
async def test_bad_amount_in_path_is_a_400(facts_client, upstream, amount):
    client = await facts_client()
    response = await client.get(f"/api/v1/cats/{amount}")
    body = await response.json()
    assert response.status == 400, body
    assert body["details"][0] == {
        "field": "amount",
        "location": "path",
        "message": body["details"][0]["message"],
        "type": body["details"][0]["type"],
    }
    assert upstream.calls == 0


async def test_an_integral_float_is_an_integer(facts_client, upstream):
    # JSON Schema's integer: 2.0 is 2, as the OpenAPI document reads it.
    client = await facts_client()
    body = await get_cats(client, "2.0")
    assert body["requested"] == 2


async def test_missing_amount_is_a_400(facts_client, upstream):
    client = await facts_client()
    response = await client.get("/api/v1/cats")
    assert response.status == 400
    assert (await response.json())["details"][0]["type"] == "missing"


# ---------------------------------------------------------------- settings


def test_the_upstream_defaults_to_the_public_api(monkeypatch):
    monkeypatch.delenv("FACTS_UPSTREAM_URL", raising=False)
    monkeypatch.delenv("FACTSOURCE_URL", raising=False)
    assert Settings(service_name="facts").upstream_url == CATFACT_NINJA == "https://catfact.ninja"


def test_factsource_is_used_when_it_is_an_upstream(monkeypatch):
    monkeypatch.delenv("FACTS_UPSTREAM_URL", raising=False)
    monkeypatch.setenv("FACTSOURCE_URL", "http://factsource:8000")
    assert Settings(service_name="facts").upstream_url == "http://factsource:8000"


def test_facts_upstream_url_wins(monkeypatch):
    monkeypatch.setenv("FACTSOURCE_URL", "http://factsource:8000")
    monkeypatch.setenv("FACTS_UPSTREAM_URL", "https://catfact.example")
    assert Settings(service_name="facts").upstream_url == "https://catfact.example"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FACTS_UPSTREAM_URL", "catfact.ninja"),
        ("FACTS_CONCURRENCY", "0"),
        ("FACTS_RETRY_SHARE", "-1"),
        ("FACTS_DUPLICATE_SHARE", "many"),
    ],
)
def test_a_bad_setting_names_its_variable(monkeypatch, capsys, variable, value):
    assert f"{variable}:" in refused_setting(monkeypatch, capsys, Settings, variable, value)

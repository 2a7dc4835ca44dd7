"""The word rule against tricky cases, and POST /api/v1/facts."""

from __future__ import annotations

import pytest

from services.factcheck.app import create_app
from services.factcheck.models import MAX_FACT_LENGTH, MAX_FACTS
from services.factcheck.rule import keep_cat_facts, mentions_cat
from tests.unit.conftest import settings_for

KEPT = [
    "Cats sleep 16 hours",
    "A cat's nose is unique",
    "cat",
    "CAT",
    "Cats!",
    "My cat.",
    "(cat)",
    '"Cat," she said',
    "cat-like reflexes",
    "a non-cat animal",
    "The cats' toys",  # plural possessive
    "The cat\u2019s whiskers",  # typographic apostrophe
    "cAtS everywhere",
    "#cats",
    "cat/dog",
    "Katze, chat, cat",
    "Une caté et un cat",  # "caté" is another word, "cat" is there
    "\uff23\uff21\uff34\uff33 in full width",  # NFKC: CATS
    "\u00abcat\u00bb",  # guillemets
    "cat\ttab",
    "line one\ncat on line two",
]

REJECTED = [
    "concatenate strings",
    "The bobcat hunts",
    "category theory",
    "scat singing",
    "catalog of parts",
    "tomcat server",
    "wildcats roam",
    "copycat",
    "cattle graze",
    "catnip",
    "scatter",
    "catcat",
    "caté",  # a letter after: one word
    "écat",  # a letter before: one word
    "cat5 cable",
    "3cats",
    "cat_food",
    "c-a-t",
    "ca t",
    "c\u200bat",  # zero-width space splits the letters
    "kittens",
    "",
]


@pytest.mark.parametrize("text", KEPT)
def test_kept(text):
    assert mentions_cat(text)


@pytest.mark.parametrize("text", REJECTED)
def test_rejected(text):
    assert not mentions_cat(text)


def test_keep_cat_facts_keeps_order_and_repeats():
    facts = ["Cats purr", "bobcat", "A cat's nose", "Cats purr", "category"]
    assert keep_cat_facts(facts) == ["Cats purr", "A cat's nose", "Cats purr"]


# ---------------------------------------------------------------- the endpoint


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(create_app(settings_for("factcheck")))


async def test_keeps_the_cat_facts_in_order(client):
    facts = REJECTED[:3] + KEPT[:3] + REJECTED[3:6] + KEPT[3:6]
    response = await client.post("/api/v1/facts", json={"facts": facts})
    assert response.status == 200
    assert await response.json() == {"facts": KEPT[:6]}


async def test_an_empty_list_is_fine(client):
    response = await client.post("/api/v1/facts", json={"facts": []})
    assert response.status == 200
    assert await response.json() == {"facts": []}


@pytest.mark.parametrize(
    "facts",
    [["cats"] * MAX_FACTS, ["cat " + "x" * (MAX_FACT_LENGTH - 4)]],
    ids=["most-facts", "longest-fact"],
)
async def test_the_limits_are_accepted(client, facts):
    response = await client.post("/api/v1/facts", json={"facts": facts})
    assert response.status == 200
    assert (await response.json())["facts"] == facts


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({}, "facts", "missing"),
        ({"facts": "cats"}, "facts", "list_type"),
        ({"facts": None}, "facts", "list_type"),
        ({"facts": ["cat", 3]}, "facts.1", "string_type"),
        ({"facts": ["cat", None]}, "facts.1", "string_type"),
        ({"facts": [["cat"]]}, "facts.0", "string_type"),
        ({"facts": ["cat"] * (MAX_FACTS + 1)}, "facts", "too_long"),
        ({"facts": ["cat" * MAX_FACT_LENGTH]}, "facts.0", "string_too_long"),
        ({"facts": [], "extra": 1}, "extra", "extra_forbidden"),
        (["cat"], "body", "model_type"),
    ],
)
async def test_bad_bodies_are_400_with_details(client, body, field, kind):
    response = await client.post("/api/v1/facts", json=body)
    answer = await response.json()
    assert response.status == 400, answer
    assert answer["code"] == "validation_error"
    assert (field, kind) in [(d["field"], d["type"]) for d in answer["details"]]


async def test_malformed_json_is_400(client):
    response = await client.post(
        "/api/v1/facts", data=b'{"facts": [', headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["code"] == "malformed_json"


async def test_wrong_content_type_is_415(client):
    response = await client.post(
        "/api/v1/facts", data=b"cats", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415


async def test_a_body_over_the_limit_is_413(aiohttp_client):
    client = await aiohttp_client(create_app(settings_for("factcheck", max_body_bytes=4096)))
    response = await client.post("/api/v1/facts", json={"facts": ["cat" * 100] * 20})
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"

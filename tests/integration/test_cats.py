"""facts (backed by factsource) and factcheck, through the ingress."""

from __future__ import annotations

import pytest


def error_shape(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() == {"error", "code", "details"}
    return body


@pytest.mark.parametrize("amount", [1, 5, 25, 100])
def test_facts_for_several_amounts(agora, amount):
    response = agora.get("/api/v1/cats", params={"amount": amount})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["requested"] == amount
    # factsource has 200+ facts, and the duplicate budget covers the repeats.
    assert body["returned"] == amount == len(body["facts"]) == len(set(body["facts"]))
    assert body["missing"] == 0 and body["failed_calls"] == 0
    assert all(isinstance(fact, str) and fact.strip() for fact in body["facts"])


def test_the_path_form(agora):
    body = agora.get("/api/v1/cats/3").json()
    assert body["requested"] == body["returned"] == len(set(body["facts"])) == 3


@pytest.mark.parametrize("path", ["/api/v1/cats/0", "/api/v1/cats/501", "/api/v1/cats/x"])
def test_bad_amount_in_path(agora, path):
    body = error_shape(agora.get(path), 400)
    assert body["details"][0]["field"] == "amount"


@pytest.mark.parametrize("params", [{}, {"amount": "-3"}, {"amount": "2.5"}])
def test_bad_amount_in_query(agora, params):
    body = error_shape(agora.get("/api/v1/cats", params=params), 400)
    assert body["code"] == "validation_error"


def test_factcheck_keeps_the_cat_facts_in_order(agora):
    facts = [
        "Cats sleep 16 hours",
        "concatenate",
        "A cat's nose is unique",
        "bobcat",
        "category",
        "CATS!",
    ]
    response = agora.post("/api/v1/facts", json={"facts": facts})
    assert response.status_code == 200, response.text
    assert response.json() == {"facts": ["Cats sleep 16 hours", "A cat's nose is unique", "CATS!"]}


@pytest.mark.parametrize(
    ("body", "status"),
    [({"facts": "cat"}, 400), ({"facts": [1]}, 400), ({"fact": []}, 400), ([], 400)],
)
def test_factcheck_bad_bodies(agora, body, status):
    answer = error_shape(agora.post("/api/v1/facts", json=body), status)
    assert answer["details"]


def test_factcheck_malformed_json_and_too_big(agora):
    headers = {"Content-Type": "application/json"}
    error_shape(agora.post("/api/v1/facts", content=b'{"facts": [', headers=headers), 400)
    huge = b'{"facts": ["' + b"c" * (2 * 1024 * 1024) + b'"]}'
    error_shape(agora.post("/api/v1/facts", content=huge, headers=headers), 413)


def test_facts_then_factcheck(agora):
    fetched = agora.get("/api/v1/cats", params={"amount": 50}).json()["facts"]
    kept = agora.post("/api/v1/facts", json={"facts": fetched}).json()["facts"]
    assert kept  # almost every bundled fact names cats
    assert kept == [fact for fact in fetched if fact in kept]  # a subsequence, in order


@pytest.mark.parametrize(
    ("service", "path"), [("facts", "/api/v1/cats"), ("factcheck", "/api/v1/facts")]
)
def test_openapi_through_the_ingress(agora, service, path):
    response = agora.get(f"/api/v1/{service}/openapi.json")
    assert response.status_code == 200
    assert path in response.json()["paths"]
    assert agora.get(f"/api/v1/{service}/docs").status_code == 200

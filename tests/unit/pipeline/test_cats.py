"""The cats flow and the facts/factcheck operations, against a fake pair of upstreams."""

from __future__ import annotations

from tests.unit.pipeline.conftest import ABOUT_CATS, FACTS


async def get_cats(client, amount: object, status: int = 200) -> dict:
    resp = await client.get("/api/v1/pipeline/cats", params={"amount": str(amount)})
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_cats_fetches_then_keeps_the_facts_about_cats(pipeline_client, fake_cats):
    client = await pipeline_client(facts_url=fake_cats.url, factcheck_url=fake_cats.url)
    answer = await get_cats(client, 4)
    expected = [fact for fact in FACTS[:4] if ABOUT_CATS.search(fact)]
    assert answer == {"facts": expected, "requested": 4, "fetched": 4, "kept": len(expected)}
    assert fake_cats.amounts == ["4"]
    assert fake_cats.checked == [FACTS[:4]]


async def test_cats_without_facts_configured_is_503(client):
    error = await get_cats(client, 3, 503)
    assert error == {
        "error": "facts: facts is not configured: FACTS_URL is not set",
        "code": "not_configured",
        "details": [],
    }


async def test_cats_without_factcheck_configured_is_503(pipeline_client, fake_cats):
    client = await pipeline_client(facts_url=fake_cats.url)
    error = await get_cats(client, 3, 503)
    assert error["error"] == "checked: factcheck is not configured: FACTCHECK_URL is not set"


async def test_cats_when_no_facts_could_be_fetched(pipeline_client, fake_cats):
    client = await pipeline_client(facts_url=fake_cats.url, factcheck_url=fake_cats.url)
    fake_cats.facts_status = 502
    error = await get_cats(client, 3, 503)
    assert "facts is unavailable" in error["error"]
    assert fake_cats.checked == []


async def test_an_upstream_500_is_a_bad_gateway(pipeline_client, fake_cats):
    client = await pipeline_client(facts_url=fake_cats.url, factcheck_url=fake_cats.url)
    fake_cats.facts_status = 500
    error = await get_cats(client, 3, 502)
    assert error["code"] == "bad_gateway"


async def test_cats_amount_is_checked(client):
    for bad in (0, 501, "many"):
        error = await get_cats(client, bad, 400)
        assert error["details"][0]["field"] == "amount"


async def test_facts_and_factcheck_in_a_custom_graph(pipeline_client, fake_cats):
    client = await pipeline_client(facts_url=fake_cats.url, factcheck_url=fake_cats.url)
    resp = await client.post(
        "/api/v1/pipeline/runs",
        json={
            "steps": {
                "fetch": {"op": "facts", "input": {"amount": 5}},
                "check": {"op": "factcheck", "input": {"facts": {"$ref": "fetch.facts"}}},
                "count": {"op": "sum", "input": {"numbers": [{"$ref": "fetch.returned"}, 1]}},
            }
        },
    )
    answer = await resp.json()
    assert answer["status"] == "succeeded", answer
    assert answer["steps"]["check"]["output"]["facts"] == [f for f in FACTS if ABOUT_CATS.search(f)]
    assert answer["steps"]["count"]["output"] == {"sum": 6}

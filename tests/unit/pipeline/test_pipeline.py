"""pipeline through HTTP: custom graphs and the stats flow, against calc's real app."""

from __future__ import annotations

import math

import pytest

from services.pipeline.app import Settings


async def post(client, path: str, body: object, status: int = 200) -> dict:
    resp = await client.post(path, json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def run(client, body: object, status: int = 200) -> dict:
    return await post(client, "/api/v1/pipeline/runs", body, status)


# ---------------------------------------------------------------- custom graphs


async def test_a_custom_graph_through_calc(client):
    answer = await run(
        client,
        {
            "input": {"numbers": [1, 2, 3, 4]},
            "steps": {
                "total": {"op": "sum", "input": {"numbers": {"$ref": "input.numbers"}}},
                "shares": {
                    "op": "ratios",
                    "input": {
                        "numbers": {"$ref": "input.numbers"},
                        "sum": {"$ref": "total.sum"},
                        "round": 2,
                    },
                },
                "pause": {"op": "wait", "input": {"ms": 1}},
            },
        },
    )
    assert answer["status"] == "succeeded"
    steps = answer["steps"]
    assert steps["total"]["output"] == {"sum": 10}
    assert steps["shares"]["output"] == {"ratios": [0.1, 0.2, 0.3, 0.4]}
    assert steps["pause"]["output"] == {"waited_ms": 1}
    assert steps["shares"]["op"] == "ratios" and steps["shares"]["error"] is None
    assert steps["shares"]["started_ms"] >= steps["total"]["ended_ms"]
    assert answer["total_ms"] >= steps["shares"]["ended_ms"]


async def test_big_integers_stay_exact_across_services(client):
    numbers = [2**100 + 7, 3**60, -(5**30)]
    answer = await run(
        client,
        {
            "input": {"numbers": numbers},
            "steps": {
                "p": {"op": "product", "input": {"numbers": {"$ref": "input.numbers"}}},
                "q": {"op": "quotient", "input": {"product": {"$ref": "p.product"}, "sum": 3}},
            },
        },
    )
    assert answer["steps"]["p"]["output"] == {"product": math.prod(numbers)}
    assert answer["steps"]["q"]["output"] == {"quotient": math.prod(numbers) // 3}


async def test_a_failed_step_skips_its_dependents_only(client):
    answer = await run(
        client,
        {
            "steps": {
                "zero": {"op": "quotient", "input": {"product": 1, "sum": 0}},
                "after": {"op": "sum", "input": {"numbers": [{"$ref": "zero.quotient"}]}},
                "apart": {"op": "sum", "input": {"numbers": [1, 2]}},
            }
        },
    )
    assert answer["status"] == "failed"
    zero, after, apart = (answer["steps"][n] for n in ("zero", "after", "apart"))
    assert zero["status"] == "failed"
    assert zero["error"]["error"] == "Cannot divide by zero"
    assert zero["error"]["status"] == 422 and zero["error"]["code"] == "division_by_zero"
    assert after["status"] == "skipped"
    assert after["error"]["error"] == "skipped because zero failed"
    assert after["started_ms"] is None
    assert apart["output"] == {"sum": 3}


async def test_wait_checks_its_input(client):
    answer = await run(client, {"steps": {"w": {"op": "wait", "input": {"ms": "soon"}}}})
    assert answer["steps"]["w"]["error"]["status"] == 400


async def test_a_step_timeout_from_the_body(client):
    answer = await run(
        client, {"steps": {"w": {"op": "wait", "input": {"ms": 2000}, "timeout_ms": 50}}}
    )
    assert answer["steps"]["w"]["error"]["code"] == "timeout"


async def test_calc_unavailable_fails_the_step_with_503(pipeline_client, unreachable):
    client = await pipeline_client(calc_url=unreachable)
    answer = await run(
        client,
        {
            "steps": {
                "s": {"op": "sum", "input": {"numbers": [1]}},
                "w": {"op": "wait", "input": {"ms": 0}},
            }
        },
    )
    assert answer["steps"]["s"]["error"]["status"] == 503
    assert answer["steps"]["w"]["status"] == "succeeded"


# ---------------------------------------------------------------- refused graphs


async def test_a_cycle_is_400_naming_its_steps(client):
    error = await run(
        client,
        {
            "steps": {
                "a": {"op": "sum", "input": {"numbers": [{"$ref": "b.sum"}]}},
                "b": {"op": "sum", "input": {"numbers": [{"$ref": "a.sum"}]}},
            }
        },
        400,
    )
    assert error["code"] == "cycle"
    assert error["error"] == "Steps form a cycle: a -> b -> a"


async def test_unknown_references_are_400(client):
    error = await run(
        client,
        {
            "input": {"numbers": [1]},
            "steps": {
                "a": {"op": "sum", "input": {"numbers": {"$ref": "input.values"}}},
                "b": {"op": "sum", "input": {"numbers": [{"$ref": "a.total"}]}},
                "c": {"op": "sum", "input": {"numbers": [{"$ref": "ghost.sum"}]}},
            },
        },
        400,
    )
    assert error["code"] == "invalid_graph"
    assert [d["field"] for d in error["details"]] == [
        "steps.a.input.numbers",
        "steps.b.input.numbers.0",
        "steps.c.input.numbers.0",
    ]


async def test_too_many_steps_is_413(pipeline_client):
    client = await pipeline_client(pipeline_max_steps=3)
    steps = {f"s{i}": {"op": "wait", "input": {"ms": 0}} for i in range(4)}
    error = await run(client, {"steps": steps}, 413)
    assert error["code"] == "too_many_steps"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": {}}, "steps"),
        ({}, "steps"),
        ({"steps": {"bad name": {"op": "sum"}}}, "steps.bad name.[key]"),
        ({"steps": {"a": {"op": "sum", "extra": 1}}}, "steps.a.extra"),
        ({"steps": {"a": {"op": "wait"}}, "timeout_ms": 0}, "timeout_ms"),
        ({"steps": {"a": {"op": "nope"}}}, "steps.a.op"),
        ({"steps": {"input": {"op": "wait"}}}, "steps.input.[key]"),
    ],
)
async def test_bad_run_bodies_are_400(client, body, field):
    error = await run(client, body, 400)
    assert field in [d["field"] for d in error["details"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": {"a": {"op": "wait"}}, "timeout_ms": 9000}, "timeout_ms"),
        ({"steps": {"a": {"op": "wait"}}, "max_concurrency": 17}, "max_concurrency"),
    ],
)
async def test_limits_above_the_services_are_422(client, body, field):
    # The document states the API's bounds; these are the deployment's settings.
    error = await run(client, body, 422)
    assert error["code"] == "over_service_limit"
    assert [d["field"] for d in error["details"]] == [field]


def test_the_run_timeout_must_leave_time_to_answer():
    with pytest.raises(ValueError, match="PIPELINE_RUN_TIMEOUT must be below REQUEST_TIMEOUT"):
        Settings(service_name="pipeline", calc_url="http://calc", pipeline_run_timeout=10)


# ---------------------------------------------------------------- the stats flow


async def test_stats(client):
    numbers = [1, 2, 3, 4.0]
    answer = await post(client, "/api/v1/pipeline/stats", {"numbers": numbers})
    roots = [math.sqrt(n) for n in numbers]
    squares = [1, 4, 9, 16.0]
    assert answer == {
        "sum": 10.0,
        "product": 24.0,
        "quotient": 2.4,
        "squares": squares,
        "roots": roots,
        "total": math.fsum([math.fsum(squares), math.fsum(roots)]),
    }


async def test_stats_of_integers_is_exact(client):
    numbers = [2**70, 3, 5]
    answer = await post(client, "/api/v1/pipeline/stats", {"numbers": numbers})
    assert answer["sum"] == sum(numbers) and answer["product"] == math.prod(numbers)
    assert answer["squares"] == [n * n for n in numbers]
    assert answer["quotient"] == math.prod(numbers) / sum(numbers)


async def test_stats_passes_calc_errors_on(client):
    error = await post(client, "/api/v1/pipeline/stats", {"numbers": [0, 0]}, 422)
    assert error["error"] == "quotient: Cannot divide by zero"


async def test_stats_checks_its_body(client):
    error = await post(client, "/api/v1/pipeline/stats", {"numbers": [1, True]}, 400)
    assert [d["field"] for d in error["details"]] == ["numbers.1"]
    # roots are taken of them: a negative one is refused before any step runs
    error = await post(client, "/api/v1/pipeline/stats", {"numbers": [4, -1]}, 400)
    assert [d["field"] for d in error["details"]] == ["numbers.1"]
    await post(client, "/api/v1/pipeline/stats", {"numbers": []}, 400)


async def test_stats_without_calc_is_503(pipeline_client, unreachable):
    client = await pipeline_client(calc_url=unreachable)
    error = await post(client, "/api/v1/pipeline/stats", {"numbers": [1, 2]}, 503)
    assert "calc is unavailable" in error["error"]

"""pipeline through the ingress: the stats flow and a custom graph, calling calc."""

from __future__ import annotations

import math


def test_stats_flow(agora):
    numbers = [1, 4, 9, 16]
    resp = agora.post("/api/v1/pipeline/stats", json={"numbers": numbers})
    assert resp.status_code == 200, resp.text
    roots = [1.0, 2.0, 3.0, 4.0]
    squares = [n * n for n in numbers]
    assert resp.json() == {
        "sum": 30,
        "product": 576,
        "quotient": 19.2,
        "squares": squares,
        "roots": roots,
        "total": sum(squares) + sum(roots),
    }


def test_stats_flow_passes_calc_errors_on(agora):
    resp = agora.post("/api/v1/pipeline/stats", json={"numbers": [0, 0]})
    assert resp.status_code == 422
    assert resp.json()["error"] == "quotient: Cannot divide by zero"
    # a negative number is refused by stats' own document, before any step runs
    resp = agora.post("/api/v1/pipeline/stats", json={"numbers": [4, -1]})
    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["details"]] == ["numbers.1"]


def test_a_step_carries_calcs_error(agora):
    body = {"steps": {"r": {"op": "roots", "input": {"numbers": [4, -1]}}}}
    run = agora.post("/api/v1/pipeline/runs", json=body).json()
    assert run["status"] == "failed"
    error = run["steps"]["r"]["error"]
    assert error["status"] == 400 and error["details"][0]["field"] == "numbers.1"


def test_custom_graph(agora):
    numbers = [2**70, 5, 10]
    resp = agora.post(
        "/api/v1/pipeline/runs",
        json={
            "input": {"numbers": numbers},
            "steps": {
                "total": {"op": "sum", "input": {"numbers": {"$ref": "input.numbers"}}},
                "product": {"op": "product", "input": {"numbers": {"$ref": "input.numbers"}}},
                "mean": {
                    "op": "quotient",
                    "input": {"product": {"$ref": "total.sum"}, "sum": len(numbers)},
                },
                "broken": {"op": "quotient", "input": {"product": 1, "sum": 0}},
                "after_broken": {
                    "op": "sum",
                    "input": {"numbers": [{"$ref": "broken.quotient"}]},
                },
            },
        },
    )
    assert resp.status_code == 200, resp.text
    run = resp.json()
    steps = run["steps"]
    assert run["status"] == "failed"
    assert steps["total"]["output"] == {"sum": sum(numbers)}
    assert steps["product"]["output"] == {"product": math.prod(numbers)}
    assert steps["mean"]["output"] == {"quotient": sum(numbers) / 3}
    assert steps["mean"]["started_ms"] >= steps["total"]["ended_ms"]
    assert steps["broken"]["error"]["status"] == 422
    assert steps["after_broken"]["status"] == "skipped"


def test_refused_graphs(agora):
    cycle = {
        "steps": {
            "a": {"op": "sum", "input": {"numbers": [{"$ref": "b.sum"}]}},
            "b": {"op": "sum", "input": {"numbers": [{"$ref": "a.sum"}]}},
        }
    }
    resp = agora.post("/api/v1/pipeline/runs", json=cycle)
    assert resp.status_code == 400 and resp.json()["error"] == "Steps form a cycle: a -> b -> a"

    too_many = {"steps": {f"s{i}": {"op": "wait", "input": {"ms": 0}} for i in range(201)}}
    assert agora.post("/api/v1/pipeline/runs", json=too_many).status_code == 413


def test_openapi(agora):
    document = agora.get("/api/v1/pipeline/openapi.json").json()
    assert {"/api/v1/pipeline/runs", "/api/v1/pipeline/stats"} <= set(document["paths"])

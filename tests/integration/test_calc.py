"""calc through the ingress."""

from __future__ import annotations

import math


def test_exact_integer_arithmetic(agora):
    numbers = [2**80 + 1, 3**30, 7]
    resp = agora.post("/api/v1/calc/sum", json={"numbers": numbers})
    assert resp.status_code == 200 and resp.json() == {"sum": sum(numbers)}
    resp = agora.post("/api/v1/calc/product", json={"numbers": numbers})
    assert resp.json() == {"product": math.prod(numbers)}


def test_roots_ratios_quotient(agora):
    assert agora.post("/api/v1/calc/roots", json={"numbers": [9, 2.25]}).json() == {
        "roots": [3.0, 1.5]
    }
    resp = agora.post("/api/v1/calc/ratios", json={"numbers": [1, 3], "sum": 4})
    assert resp.json() == {"ratios": [0.25, 0.75]}
    resp = agora.post("/api/v1/calc/quotient", json={"product": 10, "sum": 4})
    assert resp.json() == {"quotient": 2.5}


def test_errors_in_the_shared_shape(agora):
    resp = agora.post("/api/v1/calc/sum", json={"numbers": [1, "2", None]})
    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["details"]] == ["numbers.1", "numbers.2"]

    resp = agora.post("/api/v1/calc/roots", json={"numbers": [1, -4]})
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "numbers.1"

    resp = agora.post("/api/v1/calc/quotient", json={"product": 1, "sum": 0})
    assert resp.status_code == 422
    assert resp.json()["error"] == "Cannot divide by zero"

    resp = agora.post("/api/v1/calc/product", json={"numbers": [2**5000, 2**5000]})
    assert resp.status_code == 422 and resp.json()["code"] == "result_too_large"

    resp = agora.post("/api/v1/calc/sum", json={"numbers": [1] * 10_001})
    assert resp.status_code == 413


def test_openapi(agora):
    document = agora.get("/api/v1/calc/openapi.json").json()
    assert "/api/v1/calc/ratios" in document["paths"]

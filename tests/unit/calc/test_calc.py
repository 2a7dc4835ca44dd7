"""Every calc rule and error, through HTTP."""

from __future__ import annotations

import io
import json
import math

import pytest

from services.calc.arithmetic import MAX_ANSWER_BITS, MAX_NUMBERS
from services.kit.fields import MAX_INT_BITS


async def call(client, operation: str, body: object, status: int = 200) -> dict:
    resp = await client.post(f"/api/v1/calc/{operation}", json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def call_raw(client, operation: str, raw: str | io.BytesIO, status: int) -> dict:
    resp = await client.post(
        f"/api/v1/calc/{operation}", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == status, await resp.text()
    return await resp.json()


def fields(error: dict) -> list[str]:
    return [detail["field"] for detail in error["details"]]


# ---------------------------------------------------------------- answers


async def test_sum_of_integers_is_an_exact_integer(client):
    assert await call(client, "sum", {"numbers": list(range(1, 11))}) == {"sum": 55}
    big = 2**200 + 1
    body = await call(client, "sum", {"numbers": [big, big, -1]})
    assert body == {"sum": 2 * big - 1}
    assert isinstance(body["sum"], int)


async def test_sum_with_a_float_is_a_correctly_rounded_float(client):
    body = await call(client, "sum", {"numbers": [0.1] * 10})
    assert body == {"sum": 1.0}  # math.fsum, not 0.9999999999999999
    assert await call(client, "sum", {"numbers": [1, 2.5]}) == {"sum": 3.5}


async def test_product_of_integers_is_exact(client):
    numbers = [2**64 + 1, 3**40, -7]
    assert await call(client, "product", {"numbers": numbers}) == {"product": math.prod(numbers)}
    assert await call(client, "product", {"numbers": [5, 0, 2**8000]}) == {"product": 0}


async def test_product_with_floats(client):
    assert await call(client, "product", {"numbers": [1.5, 2, 4]}) == {"product": 12.0}


async def test_squares(client):
    assert await call(client, "squares", {"numbers": [1, -2, 1.5, 2**100]}) == {
        "squares": [1, 4, 2.25, 2**200]
    }


async def test_roots_are_floats(client):
    assert await call(client, "roots", {"numbers": [0, 4, 2, 6.25]}) == {
        "roots": [0.0, 2.0, math.sqrt(2), 2.5]
    }


async def test_ratios_and_rounding(client):
    body = await call(client, "ratios", {"numbers": [1, 2, 3], "sum": 6})
    assert body == {"ratios": [1 / 6, 2 / 6, 3 / 6]}
    body = await call(client, "ratios", {"numbers": [1, 2, 3], "sum": 6, "round": 2})
    assert body == {"ratios": [0.17, 0.33, 0.5]}


async def test_quotient_is_exact_when_integers_divide_evenly(client):
    body = await call(client, "quotient", {"product": 3**80, "sum": 3**40})
    assert body == {"quotient": 3**40}
    assert isinstance(body["quotient"], int)
    assert await call(client, "quotient", {"product": 7, "sum": 2}) == {"quotient": 3.5}
    assert await call(client, "quotient", {"product": 1.5, "sum": 0.5}) == {"quotient": 3.0}


# ---------------------------------------------------------------- bad numbers


@pytest.mark.parametrize("operation", ["sum", "product", "squares", "roots"])
async def test_missing_or_empty_numbers_are_400(client, operation):
    error = await call(client, operation, {}, 400)
    assert error["code"] == "validation_error" and fields(error) == ["numbers"]
    error = await call(client, operation, {"numbers": []}, 400)
    assert fields(error) == ["numbers"]


async def test_non_numbers_are_rejected_with_their_index(client):
    error = await call(client, "sum", {"numbers": [1, True, "2", None, 3, [4], {"n": 5}]}, 400)
    assert error["code"] == "validation_error"
    assert fields(error) == ["numbers.1", "numbers.2", "numbers.3", "numbers.5", "numbers.6"]
    messages = [detail["message"] for detail in error["details"]]
    assert messages[:3] == [
        "must be a number, not a boolean",
        "must be a number, not a string",
        "must be a number, not null",
    ]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_rejected_with_their_index(client, token):
    error = await call_raw(client, "sum", f'{{"numbers": [1, 2, {token}]}}', 400)
    assert fields(error) == ["numbers.2"]
    assert error["details"][0]["type"] == "finite_number"


async def test_a_number_that_is_not_a_list_is_400(client):
    error = await call(client, "sum", {"numbers": 5}, 400)
    assert fields(error) == ["numbers"]


async def test_unknown_fields_and_malformed_json_are_400(client):
    error = await call(client, "sum", {"numbers": [1], "extra": 1}, 400)
    assert fields(error) == ["extra"]
    error = await call_raw(client, "sum", '{"numbers": [1,', 400)
    assert error["code"] == "malformed_json"


async def test_an_integer_beyond_the_bound_is_400_naming_it(client):
    error = await call(client, "sum", {"numbers": [1, 2**MAX_INT_BITS]}, 400)
    assert fields(error) == ["numbers.1"]
    assert error["details"][0]["type"] == "int_too_large"
    assert await call(client, "sum", {"numbers": [2**MAX_INT_BITS - 1]}) == {
        "sum": 2**MAX_INT_BITS - 1
    }


async def test_negative_roots_are_400_naming_each_index(client):
    error = await call(client, "roots", {"numbers": [4, -1, 9, -0.5]}, 400)
    assert error["error"] == "Invalid body: numbers.1, numbers.3"
    assert fields(error) == ["numbers.1", "numbers.3"]
    assert {d["message"] for d in error["details"]} == {"must not be negative"}
    # and the document says so, for the clients generated from it
    doc = await (await client.get("/api/v1/calc/openapi.json")).json()
    body = doc["paths"]["/api/v1/calc/roots"]["post"]["requestBody"]["content"]
    roots_in = doc["components"]["schemas"][body["application/json"]["schema"]["$ref"][21:]]
    assert roots_in["properties"]["numbers"]["items"] == {"type": "number", "minimum": 0}


async def test_ratios_round_must_be_a_small_integer(client):
    for bad in (-1, 16, 1.5, True):
        error = await call(client, "ratios", {"numbers": [1], "sum": 2, "round": bad}, 400)
        assert fields(error)[0].startswith("round")


# ---------------------------------------------------------------- division by zero


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("ratios", {"numbers": [1, 2], "sum": 0}),
        ("ratios", {"numbers": [1, 2], "sum": 0.0}),
        ("quotient", {"product": 10, "sum": 0}),
        ("quotient", {"product": 0.0, "sum": -0.0}),
    ],
)
async def test_division_by_zero_is_422(client, operation, body):
    error = await call(client, operation, body, 422)
    assert error == {
        "error": "Cannot divide by zero",
        "code": "division_by_zero",
        "details": [
            {
                "field": "sum",
                "location": "body",
                "message": "must not be zero",
                "type": "division_by_zero",
            }
        ],
    }


# ---------------------------------------------------------------- bounds


async def test_too_many_numbers_is_413(client):
    error = await call(client, "sum", {"numbers": [1] * (MAX_NUMBERS + 1)}, 413)
    assert error["code"] == "too_many_numbers"
    assert await call(client, "sum", {"numbers": [1] * MAX_NUMBERS}) == {"sum": MAX_NUMBERS}


async def test_a_body_over_the_size_limit_is_413(client):
    raw = json.dumps({"numbers": [123456789] * 200_000}).encode()  # about 2 MB
    error = await call_raw(client, "sum", io.BytesIO(raw), 413)
    assert error["code"] == "payload_too_large"


async def test_a_product_past_the_bound_is_422_before_it_is_computed(client):
    # Unbounded, this product would have 3000 * 900 bits; it stops at the first step
    # that crosses MAX_INT_BITS.
    error = await call(client, "product", {"numbers": [2**900 - 1] * 3000}, 422)
    assert error["code"] == "result_too_large"
    assert error["error"] == f"The product is too large: more than {MAX_INT_BITS} bits"


async def test_squares_past_the_bounds_are_422(client):
    error = await call(client, "squares", {"numbers": [3, 2**5000]}, 422)
    assert fields(error) == ["numbers.1"]
    many = [2**4000] * (MAX_ANSWER_BITS // 8000 + 1)
    error = await call(client, "squares", {"numbers": many}, 422)
    assert error["code"] == "result_too_large"


@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        ("sum", {"numbers": [1e308, 1e308]}, "numbers"),
        ("sum", {"numbers": [2**2000, 0.5]}, "numbers.0"),
        ("product", {"numbers": [1e200, 1e200]}, "numbers"),
        ("squares", {"numbers": [1e200]}, "numbers.0"),
        ("roots", {"numbers": [2**2000]}, "numbers.0"),
        ("ratios", {"numbers": [1, 1e308], "sum": 1e-308}, "numbers.1"),
        ("ratios", {"numbers": [2**2000], "sum": 3}, "numbers.0"),
        ("quotient", {"product": 2**2000 + 1, "sum": 2}, "product"),
    ],
)
async def test_results_beyond_a_float_are_422(client, operation, body, field):
    error = await call(client, operation, body, 422)
    assert error["code"] == "result_too_large"
    assert fields(error) == [field]

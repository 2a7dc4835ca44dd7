"""calc against Python's own arithmetic, on generated numbers (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.calc import arithmetic
from services.kit.errors import ApiError
from services.kit.fields import MAX_INT_BITS

ints = st.integers(min_value=-(2**300), max_value=2**300)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)
numbers = st.one_of(ints, floats)
int_lists = st.lists(ints, min_size=1, max_size=50)
float_lists = st.lists(floats, min_size=1, max_size=50)
mixed_lists = st.lists(numbers, min_size=1, max_size=50)


@given(int_lists)
def test_integer_sum_is_exact(values):
    result = arithmetic.total(values)
    assert result == sum(values) and isinstance(result, int)


with_a_float = st.tuples(mixed_lists, floats, st.integers(0, 50)).map(
    lambda drawn: [*drawn[0][: drawn[2]], drawn[1], *drawn[0][drawn[2] :]]
)


@given(with_a_float)
def test_sum_with_floats_is_fsum(values):
    assert arithmetic.total(values) == math.fsum(values)


@given(st.lists(st.integers(min_value=-(2**2000), max_value=2**2000), min_size=1, max_size=20))
def test_integer_product_is_exact_or_refused_past_the_bound(values):
    prefixes = [math.prod(values[:i]) for i in range(1, len(values) + 1)]
    if 0 in values:
        assert arithmetic.product(values) == 0
    elif all(p.bit_length() <= MAX_INT_BITS for p in prefixes):
        result = arithmetic.product(values)
        assert result == prefixes[-1] and isinstance(result, int)
    else:
        with pytest.raises(ApiError) as caught:
            arithmetic.product(values)
        assert caught.value.status == 422


@given(float_lists)
def test_float_product_is_math_prod_or_refused(values):
    expected = math.prod(values)
    if math.isfinite(expected):
        assert arithmetic.product(values) == expected
    else:
        with pytest.raises(ApiError):
            arithmetic.product(values)


@given(mixed_lists)
def test_squares(values):
    assert arithmetic.squares(values) == [v * v for v in values]


@given(st.lists(st.one_of(st.integers(0, 2**300), floats.map(abs)), min_size=1, max_size=50))
def test_roots(values):
    assert arithmetic.roots(values) == [math.sqrt(v) for v in values]


@given(mixed_lists, numbers.filter(lambda v: v != 0), st.none() | st.integers(0, 15))
def test_ratios(values, whole, digits):
    expected = [v / whole for v in values]
    if digits is not None:
        expected = [round(r, digits) for r in expected]
    if all(math.isfinite(r) for r in expected):
        assert arithmetic.ratios(values, whole, digits) == expected
    else:
        with pytest.raises(ApiError):
            arithmetic.ratios(values, whole, digits)


@given(ints, ints.filter(lambda v: v != 0))
def test_integer_quotient_is_exact_when_it_divides(dividend, divisor):
    result = arithmetic.quotient(dividend, divisor)
    if dividend % divisor == 0:
        assert result == dividend // divisor and isinstance(result, int)
    else:
        assert result == dividend / divisor and isinstance(result, float)


@given(numbers)
def test_division_by_zero_is_always_refused(dividend):
    for zero in (0, 0.0, -0.0):
        with pytest.raises(ApiError) as caught:
            arithmetic.quotient(dividend, zero)
        assert caught.value.status == 422 and caught.value.message == "Cannot divide by zero"


# Through HTTP: integers of any size survive the JSON round trip exactly.
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=-(2**1000), max_value=2**1000), min_size=1, max_size=8))
async def test_exact_integers_through_json(client, values):
    resp = await client.post("/api/v1/calc/sum", json={"numbers": values})
    assert await resp.json() == {"sum": sum(values)}
    resp = await client.post("/api/v1/calc/product", json={"numbers": values})
    assert await resp.json() == {"product": math.prod(values)}

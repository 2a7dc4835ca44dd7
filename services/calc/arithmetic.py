"""calc's arithmetic: exact on integers, floats for roots and ratios, and bounded.

Every function takes numbers already validated as finite ints and floats
(services.kit.fields.Number). A sum or product of integers is an exact integer; as soon
as a float takes part, the result is a float. No request can make these compute for
long or answer megabytes: lists are capped at MAX_NUMBERS (413), every integer of an
answer at MAX_INT_BITS and an answer's integers at MAX_ANSWER_BITS in all (422, checked
before or while computing, never after).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.kit.errors import ApiError, field_error
from services.kit.fields import MAX_INT_BITS

Number = int | float

MAX_NUMBERS = 10_000
MAX_ANSWER_BITS = 1 << 20  # about 316 000 decimal digits in one answer


INT_LIMIT = f"more than {MAX_INT_BITS} bits"
FLOAT_LIMIT = "beyond the range of a float"


def _too_large(what: str, limit: str, field: str = "numbers") -> ApiError:
    return ApiError(
        422,
        f"{what} is too large: {limit}",
        code="result_too_large",
        details=[field_error(field, f"{what} is {limit}", "too_large")],
    )


def division_by_zero(field: str) -> ApiError:
    return ApiError(
        422,
        "Cannot divide by zero",
        code="division_by_zero",
        details=[field_error(field, "must not be zero", "division_by_zero")],
    )


def _check_count(numbers: Sequence[Number]) -> None:
    if len(numbers) > MAX_NUMBERS:
        raise ApiError(
            413,
            f"At most {MAX_NUMBERS} numbers per request, not {len(numbers)}",
            code="too_many_numbers",
        )


def _all_ints(numbers: Sequence[Number]) -> bool:
    return all(isinstance(n, int) for n in numbers)


def _exact(value: int, what: str, field: str = "numbers") -> int:
    if value.bit_length() > MAX_INT_BITS:
        raise _too_large(what, INT_LIMIT, field)
    return value


def _finite(value: float, what: str, field: str = "numbers") -> float:
    if not math.isfinite(value):
        raise _too_large(what, FLOAT_LIMIT, field)
    return value


def _as_floats(numbers: Sequence[Number]) -> list[float]:
    floats = []
    for index, number in enumerate(numbers):
        try:
            floats.append(float(number))
        except OverflowError:
            raise _too_large(f"numbers[{index}]", FLOAT_LIMIT, f"numbers.{index}") from None
    return floats


def total(numbers: Sequence[Number]) -> Number:
    """The sum: exact for integers; correctly rounded (math.fsum) with floats."""
    _check_count(numbers)
    if _all_ints(numbers):
        return _exact(sum(numbers), "The sum")
    try:
        return _finite(math.fsum(_as_floats(numbers)), "The sum")
    except OverflowError:
        raise _too_large("The sum", FLOAT_LIMIT) from None


def product(numbers: Sequence[Number]) -> Number:
    """The product: exact for integers, refused as soon as it grows past the bound."""
    _check_count(numbers)
    if not _all_ints(numbers):
        return _finite(math.prod(_as_floats(numbers)), "The product")
    if 0 in numbers:
        return 0
    result = 1
    for number in numbers:
        result = _exact(result * number, "The product")
    return result


def squares(numbers: Sequence[Number]) -> list[Number]:
    _check_count(numbers)
    answer_bits = sum(2 * n.bit_length() for n in numbers if isinstance(n, int))
    if answer_bits > MAX_ANSWER_BITS:
        raise ApiError(
            422,
            f"The squares are too large: more than {MAX_ANSWER_BITS} bits in all",
            code="result_too_large",
        )
    return [
        _exact(n * n, f"numbers[{i}] squared", f"numbers.{i}")
        if isinstance(n, int)
        else _finite(n * n, f"numbers[{i}] squared", f"numbers.{i}")
        for i, n in enumerate(numbers)
    ]


def roots(numbers: Sequence[Number]) -> list[float]:
    """Square roots as floats; a negative number is a 400 naming every such index."""
    _check_count(numbers)
    negative = [i for i, n in enumerate(numbers) if n < 0]
    if negative:
        raise ApiError(
            400,
            "Cannot take the square root of a negative number: "
            + ", ".join(f"numbers[{i}]" for i in negative),
            code="validation_error",
            details=[
                field_error(f"numbers.{i}", "must not be negative", "negative_root")
                for i in negative
            ],
        )
    return [math.sqrt(n) for n in _as_floats(numbers)]


def _divide(dividend: Number, divisor: Number, what: str, field: str) -> float:
    try:
        return _finite(dividend / divisor, what, field)
    except OverflowError:  # int / int whose quotient is beyond a float's range
        raise _too_large(what, FLOAT_LIMIT, field) from None


def ratios(numbers: Sequence[Number], whole: Number, digits: int | None = None) -> list[float]:
    """Each number divided by `whole` (floats), optionally rounded to `digits` places."""
    _check_count(numbers)
    if whole == 0:
        raise division_by_zero("sum")
    result = []
    for index, number in enumerate(numbers):
        ratio = _divide(number, whole, f"numbers[{index}] / sum", f"numbers.{index}")
        result.append(ratio if digits is None else round(ratio, digits))
    return result


def quotient(dividend: Number, divisor: Number) -> Number:
    """dividend / divisor: an exact integer when integers divide evenly, else a float."""
    if divisor == 0:
        raise division_by_zero("sum")
    if isinstance(dividend, int) and isinstance(divisor, int):
        whole, remainder = divmod(dividend, divisor)
        if remainder == 0:
            return whole
    return _divide(dividend, divisor, "The quotient", "product")

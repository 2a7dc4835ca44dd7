"""Field types shared by the services' schemas."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainValidator, StringConstraints
from pydantic_core import PydanticCustomError

from .api import MAX_ID


def _printable(text: str) -> str:
    # PostgreSQL text cannot hold NUL, and control characters in names are never meant.
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise ValueError("must not contain control characters")
    return text


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_printable),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]  # PostgreSQL integer
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, description="exact, at most 2 decimal places"),
]

# Exact integers up to ~2467 digits: well below the 4300 digits past which JSON parsers
# (and int <-> str) refuse them, and small enough that arithmetic on them stays quick.
MAX_INT_BITS = 8192
_JSON_KINDS = {bool: "a boolean", str: "a string", type(None): "null", list: "an array"}


def _finite_number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = _JSON_KINDS.get(type(value), "an object")
        raise PydanticCustomError("number_type", "must be a number, not {kind}", {"kind": kind})
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "must be a finite number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise PydanticCustomError(
            "int_too_large", "must be an integer of at most {bits} bits", {"bits": MAX_INT_BITS}
        )
    return value


# A finite JSON number, as it came: an int stays an exact int, a float a float.
# Booleans, strings, null, NaN and Infinity are refused.
Number = Annotated[int | float, PlainValidator(_finite_number, json_schema_input_type=int | float)]

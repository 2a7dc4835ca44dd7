"""Field types shared by the services' schemas."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, StringConstraints, WithJsonSchema
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


def comma_separated(
    item: str, *, max_items: int, convert: Callable[[str], Any], description: str
) -> Any:
    """A query parameter holding 1 to `max_items` comma-separated values, each matching
    the regular expression `item`, as a tuple of `convert(value)` in the order given,
    repeats dropped (`?ids=3,1,2`). Documented as a string with that pattern."""
    pattern = f"^{item}(,{item}){{0,{max_items - 1}}}$"
    matcher = re.compile(pattern)

    def parse(value: object) -> tuple[Any, ...]:
        if not isinstance(value, str) or not matcher.fullmatch(value):
            raise PydanticCustomError(
                "comma_list", "must be 1 to {count} comma-separated values", {"count": max_items}
            )
        try:
            return tuple(dict.fromkeys(convert(part) for part in value.split(",")))
        except ValueError as error:
            raise PydanticCustomError("comma_list", str(error)) from None

    schema = {"type": "string", "pattern": pattern, "description": description}
    return Annotated[tuple, PlainValidator(parse), WithJsonSchema(schema)]


def _id(text: str) -> int:
    value = int(text)
    if value > MAX_ID:
        raise ValueError(f"ids must be at most {MAX_ID}")
    return value


MAX_IDS = 100
# ?ids=1,2,3: batch lookups (users, posts), at most MAX_IDS.
IdList = comma_separated(
    r"[1-9][0-9]{0,18}",
    max_items=MAX_IDS,
    convert=_id,
    description=f"up to {MAX_IDS} ids, comma-separated",
)

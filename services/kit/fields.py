"""Field types shared by the services' schemas.

Each type validates a request value and states the same rule in the OpenAPI document
(a pattern, bounds, the JSON types it takes), so that a tool that generates requests
from the document (tests/contract) and the service agree on what is valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from .api import MAX_ID

# ---------------------------------------------------------------- names

# Control characters are never meant in a name (and PostgreSQL text cannot hold NUL);
# whitespace around a name is dropped. Both sets are spelled out rather than written
# \s or \p{Cc}, whose meaning differs between Python, Rust (pydantic) and ECMAScript
# (the OpenAPI document's regex dialect).
_CONTROL = r"\x00-\x1f\x7f"
_BLANK_RANGES = ((0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A))
_BLANK_RANGES += ((0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
_BLANK = "".join(
    f"\\u{start:04x}" + (f"-\\u{end:04x}" if end != start else "") for start, end in _BLANK_RANGES
)
_BLANK_CHARS = "".join(chr(c) for start, end in _BLANK_RANGES for c in range(start, end + 1))
NAME_PATTERN = f"^[^{_CONTROL}]*[^{_CONTROL}{_BLANK}][^{_CONTROL}]*$"
NAME_MAX_LENGTH = 200
_NAME = re.compile(NAME_PATTERN)


def _name(text: str) -> str:
    if not _NAME.fullmatch(text):
        raise PydanticCustomError(
            "name_invalid", "must have a visible character and no control characters"
        )
    return text.strip(_BLANK_CHARS)


# At most 200 characters as sent (the document's maxLength); stored without the
# whitespace around it.
Name = Annotated[
    str,
    Field(max_length=NAME_MAX_LENGTH, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_name),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# Free text (a post, a comment): line breaks and tabs allowed, other control characters
# not; whitespace around it dropped, and its length counted after that. The document's
# pattern states the same rule (no maxLength: blanks around the text do not count).
_TEXT_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_TEXT_BLANK = _BLANK + r"\t\n\r"
_TEXT_BLANK_CHARS = _BLANK_CHARS + "\t\n\r"


def free_text(max_length: int) -> Any:
    """Text of 1 to `max_length` characters once the whitespace around it is dropped."""
    visible = f"[^{_TEXT_CONTROL}{_TEXT_BLANK}]"
    pattern = (
        f"^[{_TEXT_BLANK}]*{visible}([^{_TEXT_CONTROL}]{{0,{max_length - 2}}}{visible})?"
        f"[{_TEXT_BLANK}]*$"
    )
    control = re.compile(f"[{_TEXT_CONTROL}]")

    def check(text: str) -> str:
        if control.search(text):
            raise PydanticCustomError(
                "text_control", "must not hold control characters but tab and line breaks"
            )
        trimmed = text.strip(_TEXT_BLANK_CHARS)
        if not 1 <= len(trimmed) <= max_length:
            raise PydanticCustomError(
                "text_length",
                "must be 1 to {max} characters, whitespace around it not counted",
                {"max": max_length},
            )
        return trimmed

    return Annotated[
        str, AfterValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})
    ]


# An email address as most mail systems take it: a dot-atom local part, a domain of
# letters, digits and hyphens with a top-level name. The pattern is the whole rule,
# stated as such in the document: "format: email" means something else to every
# validator (quoted local parts, IP literals, special-use names such as .test).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+[A-Za-z]{{2,63}}$"
_EMAIL = re.compile(EMAIL_PATTERN)


def _email(text: str) -> str:
    if not _EMAIL.fullmatch(text):
        raise PydanticCustomError("email", "must be an email address like ana@example.com")
    return text


Email = Annotated[
    str, Field(max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN}), AfterValidator(_email)
]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]  # PostgreSQL integer

# ---------------------------------------------------------------- money

MONEY_MAX = Decimal("9999999999.99")  # NUMERIC(12, 2)
CENT = Decimal("0.01")
MONEY_STRING = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
_MONEY_STRING = re.compile(MONEY_STRING)
_MONEY_RULE = f"from 0 to {MONEY_MAX}, at most 2 decimal places"


def _money(value: object) -> Decimal:
    """A JSON number or a decimal string, exact. A float is read as it is spelled
    (10.1 is 10.1, not the binary fraction nearest to it), as a JSON reader would."""
    if isinstance(value, str):
        if not _MONEY_STRING.fullmatch(value):
            raise PydanticCustomError(
                "money_string", "must be a decimal string like 19.99: {rule}", {"rule": _MONEY_RULE}
            )
        amount = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        amount = Decimal(repr(value))
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        amount = Decimal(value)
    else:
        raise PydanticCustomError("money_type", "must be a number or a decimal string")
    if not 0 <= amount <= MONEY_MAX or amount != amount.quantize(CENT, rounding="ROUND_DOWN"):
        raise PydanticCustomError("money_range", "must be {rule}", {"rule": _MONEY_RULE})
    return amount.quantize(CENT) + 0  # + 0: -0.00 becomes 0.00


Money = Annotated[
    Decimal,
    PlainValidator(_money),
    WithJsonSchema(
        {
            "anyOf": [
                # multipleOf on the number as written: 19.99 is a multiple of 0.01
                {"type": "number", "minimum": 0, "maximum": float(MONEY_MAX), "multipleOf": 0.01},
                {"type": "string", "pattern": MONEY_STRING},
            ],
            "description": f"exact: a number or a decimal string, {_MONEY_RULE}",
            "examples": ["19.99"],
        },
        mode="validation",
    ),
]

# ---------------------------------------------------------------- numbers

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


def _non_negative_number(value: object) -> int | float:
    number = _finite_number(value)
    if number < 0:
        raise PydanticCustomError("greater_than_equal", "must not be negative")
    return number


NonNegativeNumber = Annotated[
    int | float,
    PlainValidator(_non_negative_number),
    WithJsonSchema({"type": "number", "minimum": 0}, mode="validation"),
]


def comma_separated(
    item: str,
    *,
    max_items: int,
    convert: Callable[[str], Any],
    description: str,
    example: str | None = None,
) -> Any:
    """A query parameter holding 1 to `max_items` comma-separated values, each matching
    the regular expression `item`, as a tuple of `convert(value)` in the order given,
    repeats dropped (`?ids=3,1,2`), and values `convert` maps to None (names of nothing)
    left out. Documented as a string with that pattern."""
    pattern = f"^{item}(,{item}){{0,{max_items - 1}}}$"
    matcher = re.compile(pattern)

    def parse(value: object) -> tuple[Any, ...]:
        if not isinstance(value, str) or not matcher.fullmatch(value):
            raise PydanticCustomError(
                "comma_list", "must be 1 to {count} comma-separated values", {"count": max_items}
            )
        try:
            values = (convert(part) for part in value.split(","))
            return tuple(dict.fromkeys(item for item in values if item is not None))
        except ValueError as error:
            raise PydanticCustomError("comma_list", str(error)) from None

    schema: dict[str, Any] = {"type": "string", "pattern": pattern, "description": description}
    if example is not None:
        schema["examples"] = [example]  # what Swagger UI's "Try it out" offers
    return Annotated[tuple, PlainValidator(parse), WithJsonSchema(schema)]


def digits_up_to(limit: int) -> str:
    """A regular expression (no anchors) for the integers 0 to `limit` in plain digits,
    without leading zeros: what a schema can state where a number travels as text."""
    top = str(limit)
    parts = ["0", f"[1-9][0-9]{{0,{len(top) - 2}}}"] if len(top) > 1 else ["0"]
    for index, digit in enumerate(top):  # same length: below `top` at this digit
        low = "1" if index == 0 else "0"
        if int(digit) > int(low):
            rest = len(top) - index - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            parts.append(f"{top[:index]}[{low}-{int(digit) - 1}]{tail}")
    parts.append(top)
    return "(" + "|".join(parts) + ")"


def _id(text: str) -> int | None:
    # The pattern allows 19 digits; above MAX_ID no row can have the id, so it is one of
    # the missing ones a batch lookup leaves out (a 400 would refuse what the document allows).
    value = int(text)
    return value if value <= MAX_ID else None


def id_list(max_items: int) -> Any:
    """?ids=1,2,3: 1 to `max_items` positive ids, comma-separated, in order, repeats dropped."""
    return comma_separated(
        r"[1-9][0-9]{0,18}",
        max_items=max_items,
        convert=_id,
        description=f"up to {max_items} ids, comma-separated",
        example="1,2,3",
    )


MAX_IDS = 100
# ?ids=1,2,3: batch lookups (users, posts), at most MAX_IDS.
IdList = id_list(MAX_IDS)

"""Field types shared by the services' schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

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

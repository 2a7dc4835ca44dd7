"""Request and response schemas of facts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from services.kit.api import Query

MAX_AMOUNT = 500


def _digits_only(value: object) -> object:
    # pydantic would also read " 5", "+5", "5.0" and "1_0" as integers.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError(f"must be a whole number from 1 to {MAX_AMOUNT}, in digits")
    return value


Digits = Annotated[int, BeforeValidator(_digits_only)]


class AmountQuery(Query):
    amount: Digits = Field(ge=1, le=MAX_AMOUNT, description=f"how many facts, 1 to {MAX_AMOUNT}")


class CatFacts(BaseModel):
    facts: list[str] = Field(description="distinct facts, in the order they arrived")
    requested: int
    returned: int
    missing: int = Field(description="requested - returned: calls failed or budgets ran out")
    upstream_calls: int
    failed_calls: int
    duplicates: int = Field(description="facts the upstream repeated, dropped")

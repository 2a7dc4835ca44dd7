"""Request and response schemas of facts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.kit.api import Query

MAX_AMOUNT = 500


class AmountQuery(Query):
    """The amount, in the query string or the path."""

    amount: int = Field(ge=1, le=MAX_AMOUNT, description=f"how many facts, 1 to {MAX_AMOUNT}")


class CatFacts(BaseModel):
    facts: list[str] = Field(description="distinct facts, in the order they arrived")
    requested: int
    returned: int
    missing: int = Field(description="requested - returned: calls failed or budgets ran out")
    upstream_calls: int
    failed_calls: int
    duplicates: int = Field(description="facts the upstream repeated, dropped")

"""The catfact.ninja API shapes that factsource answers."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.kit.api import Query

DEFAULT_LIMIT = 10  # catfact.ninja's page size
MAX_LIMIT = 1000


class FactQuery(Query):
    max_length: int | None = Field(None, ge=1, le=10_000, description="longest fact wanted")


class FactsQuery(FactQuery):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="facts per page")
    page: int = Field(1, ge=1, le=1_000_000, description="page number, from 1")


class Fact(BaseModel):
    fact: str
    length: int


class FactsPage(BaseModel):
    """Laravel's paginator, as catfact.ninja answers GET /facts."""

    current_page: int
    data: list[Fact]
    first_page_url: str
    from_: int | None = Field(alias="from")
    last_page: int
    last_page_url: str
    next_page_url: str | None
    path: str
    per_page: int
    prev_page_url: str | None
    to: int | None
    total: int

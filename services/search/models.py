"""Request and response schemas of search."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from services.kit.api import Query

from .query import MAX_QUERY

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_OFFSET = 1000  # deeper pages cost more to rank than anyone reads
MAX_USER_QUERY = 50


class SearchQuery(Query):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="page size")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="hits to skip (`next`)")


class PostSearchQuery(SearchQuery):
    q: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY, pattern=r"\S")] = Field(
        description='words (English stemming, accents ignored), "a phrase", #hashtag,'
        " @username; every term must match"
    )


class UserSearchQuery(SearchQuery):
    q: Annotated[str, StringConstraints(min_length=1, max_length=MAX_USER_QUERY, pattern=r"\S")] = (
        Field(description="the start of a username or name; from 3 characters, typos too")
    )


class PostHits(BaseModel):
    items: list[dict[str, Any]] = Field(description="posts, as posts answers them")
    next: str | None = Field(description="`offset` of the next page; null: no more")


class UserHit(BaseModel):
    id: int
    username: str
    name: str


class UserHits(BaseModel):
    items: list[UserHit]
    next: str | None = Field(description="`offset` of the next page; null: no more")

"""Request and response schemas of graph."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from services.kit.api import Query
from services.kit.fields import Count

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_IDS = 5000

Cursor = Annotated[
    str,
    StringConstraints(pattern=r"^[1-9][0-9]{0,17}$"),
    Field(description="`next` of the previous page"),
]


class Counts(BaseModel):
    user_id: int
    followers: int
    following: int


class Edge(BaseModel):
    id: int = Field(description="the follower's (or followee's) user id")
    since: datetime


class EdgePage(BaseModel):
    items: list[Edge]
    next: str | None = Field(description="`cursor` of the next page; null: no more")


class EdgeQuery(Query):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="page size")
    cursor: Cursor | None = None


class FollowingQuery(EdgeQuery):
    min_followers: Count | None = Field(
        None, description="only followees with at least this many followers"
    )


class IdsQuery(Query):
    limit: int = Field(MAX_IDS, ge=1, le=MAX_IDS, description="at most this many ids")


class Ids(BaseModel):
    ids: list[int] = Field(description="followee ids, newest follow first")

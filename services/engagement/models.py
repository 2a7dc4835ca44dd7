"""Request and response schemas of engagement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from services.kit.api import MAX_ID, Body, Query
from services.kit.fields import Id, IdList, free_text

MAX_COMMENT = 1000
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

CommentText = Annotated[
    free_text(MAX_COMMENT),
    Field(description=f"1 to {MAX_COMMENT} characters, whitespace around it not counted"),
]
Cursor = Annotated[int, Field(ge=0, le=MAX_ID)]


class UserRef(BaseModel):
    id: int
    username: str


class Likes(BaseModel):
    count: int
    liked_by_me: bool | None = Field(description="null without a token")


class Liker(BaseModel):
    id: int = Field(description="the user's id")
    username: str
    liked_at: datetime


class LikerPage(BaseModel):
    items: list[Liker]
    next: str | None = Field(description="`cursor` for the next page; null: no more")


class PageQuery(Query):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="page size")
    cursor: Cursor | None = Field(None, description="the `next` of the previous page")


class CommentIn(Body):
    post_id: Id
    text: CommentText


class Comment(BaseModel):
    id: int
    post_id: int
    author: UserRef
    text: str
    mentions: list[UserRef] = Field(description="the @usernames that name a user")
    created_at: datetime


class CommentPage(BaseModel):
    items: list[Comment]
    next: str | None = Field(description="`cursor` for the next page; null: no more")


class CommentQuery(PageQuery):
    post_id: Id = Field(description="the post whose comments, oldest first")


class CountsQuery(Query):
    post_ids: IdList = Field(description="up to 100 post ids, comma-separated")


class Counts(BaseModel):
    post_id: int
    like_count: int
    comment_count: int
    liked_by_me: bool | None = Field(description="null without a token")


class CountsPage(BaseModel):
    items: list[Counts] = Field(description="one per post asked, in order (0 for unknown ones)")
    next: None = None

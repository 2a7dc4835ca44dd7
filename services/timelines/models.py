"""Queries and responses of timelines. A post is posts' own shape (docs/social.md),
passed through as posts answered it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.kit.api import Query

MAX_POST_ID = 2**53 - 1  # post ids are safe integers in a browser


class TimelineQuery(Query):
    limit: int = Field(20, ge=1, le=100, description="posts per page")
    before: int | None = Field(
        None,
        ge=1,
        le=MAX_POST_ID,
        description="the `next` of the page before: only posts older than this id",
    )
    counts: bool = Field(True, description="false: without likes and comments (cheaper)")


class UserRef(BaseModel):
    id: int
    username: str


class ShortUrl(BaseModel):
    short: str
    original: str


class MediaRef(BaseModel):
    id: int
    type: str


class Post(BaseModel):
    id: int
    author: UserRef
    text: str
    mentions: list[UserRef]
    hashtags: list[str]
    urls: list[ShortUrl]
    media: list[MediaRef]
    reply_to: int | None
    kind: str = Field(description="post, repost, reply or dm")
    created_at: datetime
    like_count: int | None = Field(
        None, description="null when engagement did not answer (header Agora-Degraded)"
    )
    comment_count: int | None = None
    liked_by_me: bool | None = Field(None, description="null without a token")


class TimelinePage(BaseModel):
    items: list[Post] = Field(description="newest first")
    next: str | None = Field(
        description="pass it as `before` for the next page; null: there is none",
        examples=["1873210327040"],
    )

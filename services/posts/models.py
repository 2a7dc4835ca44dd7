"""Request and response schemas of posts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.kit.api import MAX_ID, Body, Query
from services.kit.fields import Id, IdList, free_text, id_list

MAX_TEXT = 2000
MAX_MEDIA = 10
MAX_AUTHORS = 1000
DEFAULT_LIMIT = 20
MAX_LIMIT = 800

PostText = Annotated[
    free_text(MAX_TEXT),
    Field(description=f"1 to {MAX_TEXT} characters, whitespace around it not counted"),
]
MediaType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9.+/-]{0,49}$"),
    Field(description="what the media is: image, video, png, image/png, ...", examples=["image"]),
]


PostKind = Literal["post", "repost", "reply", "dm"]


class Media(Body):
    id: Annotated[int, Field(ge=0, le=MAX_ID, description="the media's id where it is stored")]
    type: MediaType


class PostIn(Body):
    text: PostText
    media: list[Media] = Field([], max_length=MAX_MEDIA, description=f"at most {MAX_MEDIA}")
    reply_to: Id | None = Field(None, description="the post this one answers; it must exist")
    kind: PostKind = Field("post", description="what it is (DeathStarBench's post_type)")


class UserRef(BaseModel):
    id: int
    username: str


class ShortLink(BaseModel):
    short: str = Field(description="the short link that replaced the URL in the text")
    original: str


class MediaOut(BaseModel):
    id: int
    type: str


class Post(BaseModel):
    id: int = Field(description="sorts by creation time; below 2^53")
    author: UserRef
    text: str = Field(description="as written, every http(s) URL replaced by its short link")
    mentions: list[UserRef] = Field(description="the @usernames that name a user")
    hashtags: list[str] = Field(description="without '#', lower case, in order, no repeats")
    urls: list[ShortLink]
    media: list[MediaOut]
    reply_to: int | None
    kind: PostKind
    created_at: datetime


class PostWithCounts(Post):
    like_count: int | None = Field(description="null when engagement did not answer")
    comment_count: int | None
    liked_by_me: bool | None = Field(description="null without a token")


class PostPage(BaseModel):
    items: list[Post]
    next: str | None = Field(description="`before` for the next page; null: no more")


class PostQuery(Query):
    ids: IdList | None = Field(None, description="these posts, in the order asked (at most 100)")
    author_ids: id_list(MAX_AUTHORS) | None = Field(  # type: ignore[valid-type]
        None, description=f"these authors' posts, newest first (at most {MAX_AUTHORS} ids)"
    )
    before: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        None, description="with author_ids: only posts with a smaller id"
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="with author_ids")


class CodePath(Query):
    code: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{11}$"), Field(description="a short code")
    ]

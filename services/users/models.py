"""Request and response schemas of users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.kit.api import MAX_ID, Body, PageQuery, Query
from services.kit.fields import Email, Id, IdList, Name, comma_separated

Age = Annotated[int, Field(ge=0, le=150)]
ADULT_AGE = 18
USERNAME_PATTERN = r"[A-Za-z0-9_.-]{3,30}"
Username = Annotated[
    str,
    StringConstraints(pattern=f"^{USERNAME_PATTERN}$"),
    Field(description="3 to 30 of A-Z a-z 0-9 _ . -; unique whatever the case"),
]
# Long enough for a passphrase, short enough that hashing it is never a burden.
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
MAX_BATCH = 100
UsernameList = comma_separated(
    USERNAME_PATTERN,
    max_items=MAX_BATCH,
    convert=str.lower,
    description=f"up to {MAX_BATCH} usernames, comma-separated (any case)",
    example="ana,bob",
)


# The two shapes a new user takes, stated in the document so that a client (and
# schemathesis) knows which combinations the handler accepts: an account (username and
# password together) or a plain user (an age, neither username nor password).
USER_SHAPES = {
    "anyOf": [
        {
            "title": "account",
            "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        },
        {
            "title": "user without an account",
            "required": ["age"],
            "properties": {
                "age": {"type": "integer"},
                "username": {"type": "null"},
                "password": {"type": "null"},
            },
        },
    ]
}


class UserIn(Body):
    """A user. With `username` and `password` it is a social account, which can log in
    and whose age is optional; without them, age is required."""

    model_config = ConfigDict(json_schema_extra=USER_SHAPES)
    name: Name
    age: Age | None = None
    email: Email | None = None
    username: Username | None = None
    password: Password | None = Field(None, description="8 to 128 characters; never shown")


class User(BaseModel):
    id: int
    name: str
    age: int | None
    email: str | None
    username: str | None = Field(description="null for a user without an account")
    created_at: datetime


class UserQuery(PageQuery):
    min_age: Age | None = None
    username: Username | None = Field(None, description="the user with this username, any case")
    ids: IdList | None = Field(None, description=f"up to {MAX_BATCH} ids: these users, in order")
    usernames: UsernameList | None = Field(
        None, description="these users, in order (after those of `ids` when both are given)"
    )


class LoginIn(Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds from now")


# ---------------------------------------------------------------- internal routes
# (services.kit.impersonation: for socialcompat, never through the ingress)

ExternalId = Annotated[int, Field(ge=0, le=MAX_ID, description="an id a compat layer chose")]


def _external_id(text: str) -> int | None:
    value = int(text)
    return value if value <= MAX_ID else None  # no user has it: missing, left out


ExternalIdList = comma_separated(
    r"(0|[1-9][0-9]{0,18})",
    max_items=MAX_BATCH,
    convert=_external_id,
    description=f"up to {MAX_BATCH} external ids, comma-separated",
    example="0,1",
)


class AccountIn(Body):
    """An account made for a compat layer: always a username and password, and the
    external id it is known by there."""

    name: Name
    username: Username
    password: Password
    external_id: ExternalId


class Account(BaseModel):
    id: int
    username: str
    external_id: int | None


class AccountQuery(Query):
    ids: IdList | None = None
    external_ids: ExternalIdList | None = None
    usernames: UsernameList | None = None


class TokenFor(Body):
    user_id: Id

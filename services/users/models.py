"""Request and response schemas of users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from services.kit.api import Body, PageQuery
from services.kit.fields import Email, Name

Age = Annotated[int, Field(ge=0, le=150)]
ADULT_AGE = 18


class UserIn(Body):
    name: Name
    age: Age
    email: Email | None = None


class User(BaseModel):
    id: int
    name: str
    age: int
    email: str | None
    created_at: datetime


class UserQuery(PageQuery):
    min_age: Age | None = None

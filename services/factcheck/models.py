"""Request and response schemas of factcheck."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from services.kit.api import Body

MAX_FACTS = 1000
MAX_FACT_LENGTH = 2000

Fact = Annotated[str, StringConstraints(max_length=MAX_FACT_LENGTH)]


class FactsIn(Body):
    facts: list[Fact] = Field(max_length=MAX_FACTS, description=f"at most {MAX_FACTS}")


class FactsOut(BaseModel):
    facts: list[str] = Field(description='the facts with the word "cat" or "cats", in order')

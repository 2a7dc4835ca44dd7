"""Request and response schemas of calc."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from services.kit.api import Body
from services.kit.fields import NonNegativeNumber, Number

Numbers = Annotated[
    list[Number], Field(min_length=1, description="finite JSON numbers; integers stay exact")
]


class NumbersIn(Body):
    numbers: Numbers


class RootsIn(Body):
    numbers: Annotated[
        list[NonNegativeNumber], Field(min_length=1, description="finite, none negative")
    ]


class RatiosIn(Body):
    numbers: Numbers
    sum: Number = Field(description="the whole each number is divided by")
    round: int | None = Field(None, ge=0, le=15, description="decimal places to round to")


class QuotientIn(Body):
    product: Number
    sum: Number


class SumOut(BaseModel):
    sum: int | float


class ProductOut(BaseModel):
    product: int | float


class SquaresOut(BaseModel):
    squares: list[int | float]


class RootsOut(BaseModel):
    roots: list[float]


class RatiosOut(BaseModel):
    ratios: list[float]


class QuotientOut(BaseModel):
    quotient: int | float

"""Request and response schemas of pipeline."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from services.kit.api import Body, Query
from services.kit.fields import NonNegativeNumber

from .dag import RUN_INPUT, STEP_NAME
from .operations import FIELDS


def _not_the_input(name: str) -> str:
    if name == RUN_INPUT:
        raise PydanticCustomError("step_name", "a step may not be named {name}", {"name": name})
    return name


StepName = Annotated[
    str,
    StringConstraints(pattern=STEP_NAME.pattern),
    AfterValidator(_not_the_input),
    Field(json_schema_extra={"not": {"const": RUN_INPUT}}),
]
OpName = Literal[tuple(FIELDS)]  # type: ignore[valid-type]
Milliseconds = Annotated[int, Field(ge=1, le=300_000)]
MAX_CATS = 500  # what facts serves in one call


class StepIn(Body):
    op: OpName = Field(
        description="sum, product, squares, roots, ratios, quotient (calc), facts, "
        "factcheck, or wait {ms}",
        examples=["sum"],
    )
    input: dict[str, Any] = Field(
        default_factory=dict,
        description='the operation\'s input; {"$ref": "input.<field>"} or '
        '{"$ref": "<step>.<field>"} anywhere in it stands for that value',
    )
    timeout_ms: Milliseconds | None = Field(None, description="default: the service's")


class RunIn(Body):
    input: dict[str, Any] = Field(default_factory=dict, description="what references read")
    steps: dict[StepName, StepIn] = Field(min_length=1)
    timeout_ms: Milliseconds | None = Field(None, description="for the whole run")
    max_concurrency: int | None = Field(None, ge=1, description="steps running at once")


class StepError(BaseModel):
    error: str
    code: str
    status: int
    details: list[Any]


class StepOut(BaseModel):
    op: str
    status: Literal["succeeded", "failed", "skipped"]
    output: Any = None
    error: StepError | None = None
    started_ms: float | None = Field(None, description="since the run started")
    ended_ms: float | None = None


class RunOut(BaseModel):
    status: Literal["succeeded", "failed"]
    total_ms: float
    steps: dict[str, StepOut]


class StatsIn(Body):
    # Their square roots are taken, so none may be negative.
    numbers: Annotated[list[NonNegativeNumber], Field(min_length=1)]


class StatsOut(BaseModel):
    sum: int | float
    product: int | float
    quotient: int | float
    squares: list[int | float]
    roots: list[float]
    total: int | float = Field(description="the sum of the squares plus the sum of the roots")


class CatsQuery(Query):
    amount: int = Field(ge=1, le=MAX_CATS, description="how many facts to fetch")


class CatsOut(BaseModel):
    facts: list[str] = Field(description="the fetched facts that mention cats")
    requested: int
    fetched: int
    kept: int

"""Request and response schemas of the crawler, and what travels on its work stream."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from services.kit.api import Body, PageQuery, Query

from .checker import KINDS, CheckOptions
from .urls import MAX_URL_LENGTH

TaskStatus = Literal["pending", "running", "ready", "cancelled"]
ErrorKind = Literal[KINDS]  # type: ignore[valid-type]
MAX_TIMEOUT = 30.0
MAX_REDIRECTS = 20


class Options(Body):
    """How each URL of the task is checked (safe bounds; defaults when left out)."""

    timeout: float = Field(
        10.0, ge=0.1, le=MAX_TIMEOUT, description="seconds per attempt, redirects included"
    )
    max_redirects: int = Field(5, ge=0, le=MAX_REDIRECTS, description="more is too_many_redirects")
    method: Literal["HEAD", "GET"] = Field(
        "HEAD", description="HEAD (then GET when a server refuses HEAD: 405, 501), or GET"
    )

    def check_options(self) -> CheckOptions:
        return CheckOptions(
            timeout=self.timeout, max_redirects=self.max_redirects, method=self.method
        )


# What a JSON Schema can say of a URL; the rest (a valid host, port, no credentials) is
# checked by services.crawler.urls, and a URL failing it is a 400 naming its index.
URL_SCHEMA = {
    "type": "string",
    "minLength": 8,
    "maxLength": MAX_URL_LENGTH,
    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]",
}


class Submission(Body):
    urls: list[Annotated[str, WithJsonSchema(URL_SCHEMA)]] = Field(
        min_length=1,
        description=(
            "http(s) URLs, at most CRAWLER_MAX_URLS (1,000; more is a 413), each at most"
            f" {MAX_URL_LENGTH} characters; the same URL twice is checked once"
        ),
        examples=[["http://127.0.0.1:8080/", "http://127.0.0.1:8080/missing"]],
    )
    options: Options = Field(default_factory=Options)


class Submitted(BaseModel):
    task_id: UUID
    status: TaskStatus = Field(examples=["pending"])
    total: int = Field(description="distinct URLs to check")
    duplicates: int = Field(description="URLs given more than once, counted once")


class Progress(BaseModel):
    total: int
    done: int = Field(description="checked and answered below 400")
    failed: int = Field(description="checked with an error (an HTTP status of 400 or more too)")
    pending: int = Field(description="not checked yet")


class TaskSummary(BaseModel):
    task_id: UUID
    status: TaskStatus = Field(
        description=(
            "pending (queued), running (its first URL taken), ready (every URL has its"
            " result), cancelled (POST .../cancel: no URL is checked after it)"
        )
    )
    progress: Progress
    options: Options
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = Field(None, description="when it became ready or cancelled")


class UrlError(BaseModel):
    kind: ErrorKind = Field(examples=["http"])
    detail: int | str | None = Field(
        examples=[404], description="the status code for http, what happened otherwise"
    )


class UrlResult(BaseModel):
    url: str = Field(description="the URL in its normal form")
    status_code: int | None = Field(None, description="the final answer's (None: no answer)")
    final_url: str | None = Field(None, description="where redirects led")
    redirects: int | None = None
    elapsed_ms: float | None = Field(None, description="the whole check, retries included")
    attempts: int | None = None
    checked_at: datetime | None = Field(None, description="None: not checked yet")
    error: UrlError | None = None


class Task(TaskSummary):
    result: list[UrlResult] = Field(description="one per URL, in the order submitted")


class TaskPath(Query):
    task_id: UUID = Field(description="as answered by POST .../tasks")


class TaskQuery(PageQuery):
    status: TaskStatus | None = Field(None, description="only tasks in this status")


class QueuedUrl(BaseModel):
    """The payload of a `task.url_queued` event on the work stream: one URL to check."""

    model_config = ConfigDict(extra="ignore")

    task_id: UUID
    position: int = Field(ge=0)
    url: str

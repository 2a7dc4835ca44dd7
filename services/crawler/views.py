"""HTTP handlers of the crawler: URL-check tasks."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from services.kit.api import Api, Page, json_response, no_content, page
from services.kit.errors import ApiError, field_error, not_found
from services.kit.keys import DB_POOL, SETTINGS

from . import store
from .metrics import SUBMITTED_TASKS, SUBMITTED_URLS
from .models import Submission, Submitted, Task, TaskPath, TaskQuery, TaskSummary
from .urls import InvalidUrl, normalize

api = Api(
    "crawler",
    title="Agora crawler",
    description=(
        "URL-check tasks: submit a batch of URLs, follow its progress, read a result per URL,"
        " cancel or delete it. The checks run on crawler-worker replicas, which never reach"
        " private, loopback, link-local or metadata addresses (docs/crawler.md)."
    ),
)

PREFIX = "/api/v1/crawler"
TASK = f"{PREFIX}/tasks/{{task_id}}"


def task_location(task_id: UUID) -> str:
    return f"{PREFIX}/tasks/{task_id}"


def distinct_urls(submitted: list[str]) -> list[str]:
    """The normal form of each URL, duplicates dropped (first one kept); a 400 naming
    every bad index, so nothing is queued when one URL is wrong."""
    seen: dict[str, None] = {}
    details = []
    for index, text in enumerate(submitted):
        try:
            seen.setdefault(normalize(text), None)
        except InvalidUrl as error:
            details.append(field_error(f"urls.{index}", str(error), "invalid_url"))
    if details:
        bad = ", ".join(detail["field"].removeprefix("urls.") for detail in details)
        raise ApiError(
            400,
            f"Invalid URLs at {'index' if len(details) == 1 else 'indexes'} {bad}",
            code="validation_error",
            details=details,
        )
    return list(seen)


async def submit(request: web.Request, body: Submission) -> web.Response:
    settings = request.app[SETTINGS]
    if len(body.urls) > settings.crawler_max_urls:
        raise ApiError(
            413,
            f"A task has at most {settings.crawler_max_urls} URLs; {len(body.urls)} were sent",
            code="too_many_urls",
        )
    urls = distinct_urls(body.urls)
    options = body.options.model_dump()
    task_id = await store.create_task(
        request.app[DB_POOL], urls, options, settings.crawler_urls_stream
    )
    SUBMITTED_TASKS.inc()
    SUBMITTED_URLS.inc(len(urls))
    answer = {
        "task_id": task_id,
        "status": "pending",
        "total": len(urls),
        "duplicates": len(body.urls) - len(urls),
    }
    return json_response(answer, status=202, headers={"Location": task_location(task_id)})


SUBMIT = {
    "body": Submission,
    "response": Submitted,
    "status": 202,
    "errors": (413,),
}
api.post(f"{PREFIX}/tasks", summary="Submit URLs to check (a task)", **SUBMIT)(submit)


@api.post(f"{PREFIX}/submit", summary="Submit URLs to check (the course's name)", **SUBMIT)
async def submit_alias(request: web.Request, body: Submission) -> web.Response:
    return await submit(request, body)


@api.get(
    f"{PREFIX}/tasks",
    summary="List tasks, newest first, each with its progress",
    query=TaskQuery,
    response=Page[TaskSummary],
)
async def list_tasks(request: web.Request, query: TaskQuery) -> web.Response:
    items, total = await store.list_tasks(
        request.app[DB_POOL], query.status, query.limit, query.offset
    )
    return page(items, total)


@api.get(
    TASK,
    summary="A task: status, progress and a result per URL",
    path_params=TaskPath,
    response=Task,
    errors=(404,),
)
async def get_task(request: web.Request, path_params: TaskPath) -> web.Response:
    task_id = path_params.task_id
    task = await store.get_task(request.app[DB_POOL], task_id)
    if task is None:
        raise not_found("Task", task_id)
    return json_response(task)


@api.post(
    f"{TASK}/cancel",
    summary="Cancel a task: no URL of it is checked after this (within a second)",
    path_params=TaskPath,
    response=TaskSummary,
    errors=(404, 409),
)
async def cancel_task(request: web.Request, path_params: TaskPath) -> web.Response:
    task_id = path_params.task_id
    task = await store.cancel_task(request.app[DB_POOL], task_id)
    if task is None:
        raise not_found("Task", task_id)
    if task["status"] == "ready":
        raise ApiError(409, f"Task {task_id} is ready: every URL was checked", code="task_ready")
    return json_response(task)


@api.delete(
    TASK, summary="Cancel and delete a task", path_params=TaskPath, status=204, errors=(404,)
)
async def delete_task(request: web.Request, path_params: TaskPath) -> web.Response:
    task_id = path_params.task_id
    settings = request.app[SETTINGS]
    if not await store.delete_task(request.app[DB_POOL], task_id, settings.crawler_urls_stream):
        raise not_found("Task", task_id)
    return no_content()

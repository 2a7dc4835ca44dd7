"""crawler-worker: the checkers. `agora-serve services.crawler.worker`; scale by replicas.

Every worker process is a consumer of the work stream's group (the kit's StreamConsumer,
with CONSUMER_CONCURRENCY entries held at once and their leases renewed): for each
`task.url_queued` event it checks the URL (services.crawler.checker, SSRF-safe) and
records the result in the crawler's database, then the entry is acknowledged. So:

- a worker SIGKILLed mid-check leaves its entries pending; another worker claims them
  after CLAIM_IDLE_SECONDS and checks them again;
- each URL ends with exactly one result: results are recorded only where none is
  (services.crawler.store), the second check of a URL is discarded as a duplicate;
- a task becomes ready exactly once: in the transaction that records its last result.

Cancelled and deleted tasks: every worker keeps the state of the tasks it works on and
refreshes it every CRAWLER_CANCEL_POLL seconds; a URL of a task no longer active is not
checked, and checks in flight for it are cancelled, so nothing of a cancelled task is
requested a second after the cancellation.

Results are written in batches (CRAWLER_RESULT_BATCH, at most CRAWLER_RESULT_FLUSH
seconds apart), one transaction each; a handler returns, and its entry is acknowledged,
only once its result is committed. A database outage is waited out with the results in
memory; if the worker dies meanwhile, they are checked again by another.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from services.kit import app as kit
from services.kit.api import Api, json_response
from services.kit.background import background, sleep_unless
from services.kit.config import load_settings
from services.kit.db import CONNECTION_ERRORS
from services.kit.events import ConsumerSettings, Event, Subscription, consuming
from services.kit.keys import DB_POOL, EVENT_CONSUMERS, SETTINGS
from services.kit.streams import InvalidEntry

from . import store
from .checker import Checker, CheckerConfig
from .guard import NoLookups, loopback_socket, parse_networks
from .keys import CHECKER, RESULTS, TASK_STATES
from .metrics import READY, RECORDED, SKIPPED
from .models import QueuedUrl
from .urls import InvalidUrl, normalize

log = logging.getLogger("agora.crawler.worker")
FORGET_AFTER = 60.0  # seconds a task's state is kept after its last URL here
MAX_BACKOFF = 5.0

api = Api(
    "crawler-worker",
    title="Agora crawler-worker",
    description=(
        "Checks the URLs of crawler tasks (the API is crawler's). On its own port: health,"
        " metrics, and what this worker process is doing."
    ),
)


class WorkerStatus(BaseModel):
    consumer: str = Field(description="its name in the work stream's consumer group")
    holding: int = Field(description="queued URLs taken and not finished")
    checks_in_flight: int = Field(description="attempts running now")
    check_slots: int = Field(description="CRAWLER_WORKER_CONCURRENCY")
    tasks_known: int = Field(description="tasks whose state it keeps")
    allowed_networks: list[str] = Field(description="CRAWLER_ALLOWED_NETWORKS")
    loopback_only: bool = Field(description="CRAWLER_LOOPBACK_ONLY")


@api.get(
    "/api/v1/crawler-worker/status",
    summary="What this worker process is doing",
    response=WorkerStatus,
)
async def worker_status(request: web.Request) -> web.Response:
    app = request.app
    settings, checker = app[SETTINGS], app[CHECKER]
    [consumer] = app[EVENT_CONSUMERS]
    return json_response(
        {
            "consumer": consumer.name,
            "holding": consumer.holding,
            "checks_in_flight": checker.in_flight,
            "check_slots": checker.config.concurrency,
            "tasks_known": app[TASK_STATES].known,
            "allowed_networks": [str(n) for n in checker.config.allowed_networks],
            "loopback_only": settings.crawler_loopback_only,
        }
    )


class Settings(ConsumerSettings):
    crawler_urls_stream: str = Field("crawler.urls", min_length=1, max_length=200)
    consumer_concurrency: int = Field(
        100, ge=1, le=10_000, description="queued URLs a worker holds at once"
    )  # the kit's setting, held higher here: checks wait on the network, in no order
    crawler_worker_concurrency: int = Field(
        50, ge=1, le=5000, description="checks (attempts) a worker runs at once"
    )
    crawler_per_host_concurrency: int = Field(8, ge=1, le=5000, description="per host, per worker")
    crawler_connect_timeout: float = Field(5.0, gt=0, le=60)
    crawler_max_body_bytes: int = Field(1024 * 1024, ge=0, le=64 * 1024 * 1024)
    crawler_retries: int = Field(2, ge=0, le=5, description="after 429, 5xx or a timeout")
    crawler_backoff: float = Field(0.5, gt=0, le=60, description="the first pause, doubling")
    crawler_max_backoff: float = Field(10.0, gt=0, le=300, description="also caps Retry-After")
    crawler_user_agent: str = Field(
        "Agora-crawler/1.0 (URL checker of Agora)", min_length=1, max_length=200
    )
    crawler_allowed_networks: str = Field(
        "",
        max_length=4000,
        description="CIDRs checks may reach although private or loopback; empty: none",
    )
    crawler_loopback_only: bool = Field(
        False,
        description="test and bench stacks: checks reach 127.0.0.0/8 and ::1 only, no DNS",
    )
    crawler_cancel_poll: float = Field(0.25, gt=0, le=10, description="task states refreshed")
    crawler_result_batch: int = Field(200, ge=1, le=10_000)
    crawler_result_flush: float = Field(0.02, ge=0, le=5, description="seconds results wait")

    @field_validator("crawler_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a ValueError names the bad network
        return value

    def checker_config(self) -> CheckerConfig:
        return CheckerConfig(
            user_agent=self.crawler_user_agent,
            connect_timeout=self.crawler_connect_timeout,
            max_body_bytes=self.crawler_max_body_bytes,
            retries=self.crawler_retries,
            backoff=self.crawler_backoff,
            max_backoff=self.crawler_max_backoff,
            per_host=self.crawler_per_host_concurrency,
            concurrency=self.crawler_worker_concurrency,
            allowed_networks=parse_networks(self.crawler_allowed_networks),
        )


class TaskStates:
    """What this worker knows of the tasks it works on: loaded once per task (marking it
    running), refreshed every `poll` seconds while active, and the checks in flight for
    each, cancelled when their task is no longer active."""

    def __init__(self, db: asyncpg.Pool, poll: float) -> None:
        self.db = db
        self.poll = poll
        self._states: dict[UUID, store.TaskState] = {}
        self._used: dict[UUID, float] = {}
        self._loading: dict[UUID, asyncio.Future[store.TaskState]] = {}
        self._checks: dict[UUID, set[asyncio.Future[object]]] = {}

    async def get(self, task_id: UUID) -> store.TaskState:
        self._used[task_id] = time.monotonic()
        state = self._states.get(task_id)
        if state is not None:
            return state
        loading = self._loading.get(task_id)
        if loading is None:  # one query for all the URLs of a task arriving at once
            loading = asyncio.ensure_future(store.start_task(self.db, task_id))
            self._loading[task_id] = loading
            loading.add_done_callback(functools.partial(self._loaded, task_id))
        return await asyncio.shield(loading)

    def _loaded(self, task_id: UUID, loading: asyncio.Future[store.TaskState]) -> None:
        self._loading.pop(task_id, None)
        if not loading.cancelled() and loading.exception() is None:
            self._states[task_id] = loading.result()

    @property
    def known(self) -> int:
        return len(self._states)

    def track(self, task_id: UUID, check: asyncio.Future[object]) -> None:
        self._checks.setdefault(task_id, set()).add(check)

    def untrack(self, task_id: UUID, check: asyncio.Future[object]) -> None:
        checks = self._checks.get(task_id)
        if checks is not None:
            checks.discard(check)
            if not checks:
                del self._checks[task_id]

    async def refresh(self) -> None:
        active = [task_id for task_id, state in self._states.items() if state.active]
        if active:
            statuses = await store.task_statuses(self.db, active)
            for task_id in active:
                state = self._states[task_id]
                status = statuses.get(task_id)
                if status != state.status:
                    self._states[task_id] = store.TaskState(status, state.options)
                if status not in store.ACTIVE:
                    for check in self._checks.pop(task_id, ()):
                        check.cancel()
        horizon = time.monotonic() - FORGET_AFTER
        for task_id, used in list(self._used.items()):
            if used < horizon and task_id not in self._checks:
                self._used.pop(task_id)
                self._states.pop(task_id, None)

    async def run(self, app: web.Application, stopping: asyncio.Event) -> None:
        while not await sleep_unless(stopping, self.poll):
            try:
                await self.refresh()
            except (*CONNECTION_ERRORS, TimeoutError) as error:
                log.warning("task states not refreshed (%r)", error)


class ResultWriter:
    """Results recorded in batches; `record()` returns once its batch is committed:
    True when the result was recorded now, False when discarded (the URL had one, or
    its task is cancelled or gone)."""

    def __init__(self, db: asyncpg.Pool, batch: int, flush: float) -> None:
        self.db = db
        self.batch = batch
        self.flush = flush
        self._queue: list[tuple[store.Checked, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()

    async def record(self, checked: store.Checked) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((checked, future))
        self._wake.set()
        return await future

    async def run(self, app: web.Application, stopping: asyncio.Event) -> None:
        backoff = 0.1
        while True:
            if not self._queue:
                if stopping.is_set():
                    return
                self._wake.clear()
                await sleep_unless(stopping, 1.0, self._wake)
                continue
            if len(self._queue) < self.batch and self.flush:
                await asyncio.sleep(self.flush)  # more results join this transaction
            items, self._queue = self._queue[: self.batch], self._queue[self.batch :]
            try:
                async with self.db.acquire() as conn:
                    recorded, ready, inactive = await store.record_results(
                        conn, [checked for checked, _ in items]
                    )
            except (*CONNECTION_ERRORS, TimeoutError, asyncpg.DeadlockDetectedError) as error:
                if stopping.is_set():
                    self._fail(items, error)  # the entries stay pending: checked again
                    continue
                log.warning("results not recorded yet (%r); retrying", error)
                self._queue[:0] = items
                await sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            except Exception as error:
                self._fail(items, error)
                continue
            backoff = 0.1
            READY.inc(len(ready))
            for checked, future in items:
                key = (checked.task_id, checked.position)
                outcome = (
                    "recorded"
                    if key in recorded
                    else "discarded"
                    if checked.task_id in inactive
                    else "duplicate"
                )
                RECORDED.labels(outcome).inc()
                if not future.done():
                    future.set_result(outcome == "recorded")

    @staticmethod
    def _fail(items: list[tuple[store.Checked, asyncio.Future[bool]]], error: Exception) -> None:
        for _, future in items:
            if not future.done():
                future.set_exception(error)


async def check_url(app: web.Application, event: Event) -> bool:
    """One queued URL: checked and recorded (True), or skipped (False)."""
    queued = event.payload_as(QueuedUrl)
    try:
        url = normalize(queued.url)
    except InvalidUrl as error:
        raise InvalidEntry(f"not a URL to check: {error}") from None
    states = app[TASK_STATES]
    state = await states.get(queued.task_id)
    if not state.active:
        SKIPPED.inc()
        return False
    check = asyncio.ensure_future(app[CHECKER].check(url, state.options))
    states.track(queued.task_id, check)
    try:
        result = await check
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # this worker is stopping: the entry stays pending
        SKIPPED.inc()  # its task was cancelled mid-check
        return False
    finally:
        states.untrack(queued.task_id, check)
    return await app[RESULTS].record(store.Checked(queued.task_id, queued.position, result))


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.crawler_loopback_only:
        checker = Checker(
            settings.checker_config(), resolver=NoLookups(), make_socket=loopback_socket
        )
    else:
        checker = Checker(settings.checker_config())
    await checker.start()
    app[CHECKER] = checker
    app[TASK_STATES] = TaskStates(app[DB_POOL], settings.crawler_cancel_poll)
    app[RESULTS] = ResultWriter(
        app[DB_POOL], settings.crawler_result_batch, settings.crawler_result_flush
    )
    yield
    await checker.close()


def subscriptions(app: web.Application) -> list[Subscription]:
    stream = app[SETTINGS].crawler_urls_stream
    return [Subscription(stream, functools.partial(check_url, app))]


async def write_results(app: web.Application, stopping: asyncio.Event) -> None:
    await app[RESULTS].run(app, stopping)


async def refresh_states(app: web.Application, stopping: asyncio.Event) -> None:
    await app[TASK_STATES].run(app, stopping)


def create_app(settings: Settings | None = None) -> web.Application:
    # Stopped in reverse: the consumer first (its handlers finish or are cancelled), then
    # the state refresh, then the writer (which commits what the handlers left), then the
    # checker's session.
    return kit.create_app(
        settings or load_settings(Settings),
        api,
        postgres=True,
        redis=True,
        contexts=[
            worker_ctx,
            background("results", write_results),
            background("task-states", refresh_states),
            *consuming(subscriptions),
        ],
    )

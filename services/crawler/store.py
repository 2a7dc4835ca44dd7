"""The SQL of the crawler's database (one bounded context: the API writes tasks, the
workers their results).

A task is one row of `tasks` with its counters, and one row of `task_urls` per distinct
URL, whose result columns are filled once: a result is recorded only `WHERE checked_at
IS NULL`, so a URL checked twice (its worker died after the check, the entry was claimed
by another) keeps the first result. The counters and the status move in the same
transaction as the results, with the task's row locked, so `done + failed` is exactly the
number of recorded results and the one transaction that records the last of them makes
the task `ready`, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.kit import outbox
from services.kit.tracing import current_traceparent

from .checker import CheckOptions, CheckResult

ACTIVE = ("pending", "running")
EVENT_TYPE = "task.url_queued"
Row = dict[str, Any]

SUMMARY = (
    "id::text AS task_id, status, total, done, failed, options::text AS options, created_at,"
    " started_at, finished_at"
)
RESULT = (
    "url, status_code, final_url, redirects, elapsed_ms, attempts, checked_at, error_kind,"
    " error_detail::text AS error_detail"
)


def summary(row: asyncpg.Record) -> Row:
    total, done, failed = row["total"], row["done"], row["failed"]
    return {
        "task_id": row["task_id"],
        "status": row["status"],
        "progress": {
            "total": total,
            "done": done,
            "failed": failed,
            "pending": total - done - failed,
        },
        "options": orjson.loads(row["options"]),
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }


def url_result(row: asyncpg.Record) -> Row:
    kind = row["error_kind"]
    return {
        "url": row["url"],
        "status_code": row["status_code"],
        "final_url": row["final_url"],
        "redirects": row["redirects"],
        "elapsed_ms": row["elapsed_ms"],
        "attempts": row["attempts"],
        "checked_at": row["checked_at"],
        "error": None
        if kind is None
        else {"kind": kind, "detail": orjson.loads(row["error_detail"] or "null")},
    }


# ---------------------------------------------------------------- the API


async def create_task(
    db: asyncpg.Pool, urls: Sequence[str], options: dict[str, Any], stream: str
) -> UUID:
    """The task, its URLs and one queued-URL event per URL, in one transaction: what is
    answered 202 is committed, and reaches the workers however long Redis is away."""
    async with db.acquire() as conn, conn.transaction():
        task_id = await conn.fetchval(
            "INSERT INTO tasks (total, options) VALUES ($1, $2::jsonb) RETURNING id::text",
            len(urls),
            orjson.dumps(options).decode(),
        )
        await conn.execute(
            "INSERT INTO task_urls (task_id, position, url)"
            " SELECT $1::uuid, ordinality - 1, url"
            " FROM unnest($2::text[]) WITH ORDINALITY AS u(url)",
            task_id,
            list(urls),
        )
        await conn.execute(
            f"INSERT INTO {outbox.OUTBOX_COLUMNS}"
            " SELECT $1, $2, $3::text, jsonb_build_object("
            "   'task_id', $3::text, 'position', ordinality - 1, 'url', url), $5"
            " FROM unnest($4::text[]) WITH ORDINALITY AS u(url)",
            stream,
            EVENT_TYPE,
            task_id,
            list(urls),
            current_traceparent(),
        )
        await conn.execute(outbox.NOTIFY_SQL)
    return UUID(task_id)


async def list_tasks(
    db: asyncpg.Pool, status: str | None, limit: int, offset: int
) -> tuple[list[Row], int]:
    """Newest first."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {SUMMARY} FROM tasks WHERE ($1::text IS NULL OR status = $1)"
            " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            status,
            limit,
            offset,
        )
        total = await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE ($1::text IS NULL OR status = $1)", status
        )
    return [summary(row) for row in rows], total


async def get_task(db: asyncpg.Pool, task_id: UUID) -> Row | None:
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        # one snapshot: the counters agree with the results listed
        row = await conn.fetchrow(f"SELECT {SUMMARY} FROM tasks WHERE id = $1", task_id)
        if row is None:
            return None
        results = await conn.fetch(
            f"SELECT {RESULT} FROM task_urls WHERE task_id = $1 ORDER BY position", task_id
        )
    return {**summary(row), "result": [url_result(result) for result in results]}


async def cancel_task(db: asyncpg.Pool, task_id: UUID) -> Row | None:
    """Cancelled now, or as it was (ready or cancelled before); None when unknown."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            f"UPDATE tasks SET status = 'cancelled', finished_at = now()"
            f" WHERE id = $1 AND status = ANY($2::text[]) RETURNING {SUMMARY}",
            task_id,
            list(ACTIVE),
        )
        if row is None:
            row = await conn.fetchrow(f"SELECT {SUMMARY} FROM tasks WHERE id = $1", task_id)
    return None if row is None else summary(row)


async def delete_task(db: asyncpg.Pool, task_id: UUID, stream: str) -> bool:
    """The task and its results, and its URLs still waiting in the outbox; the workers
    skip any already on the stream. False when there was no such task."""
    async with db.acquire() as conn, conn.transaction():
        deleted = await conn.fetchval("DELETE FROM tasks WHERE id = $1 RETURNING id", task_id)
        if deleted is not None:
            await conn.execute(
                f"DELETE FROM {outbox.TABLE} WHERE published_at IS NULL AND stream = $1"
                " AND event_type = $2 AND aggregate_id = $3",
                stream,
                EVENT_TYPE,
                str(task_id),
            )
    return deleted is not None


async def statistics(db: asyncpg.Pool) -> tuple[dict[str, int], int]:
    """Tasks per status, and URLs of active tasks not checked yet."""
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM tasks GROUP BY status")
        pending = await conn.fetchval(
            "SELECT coalesce(sum(total - done - failed), 0) FROM tasks"
            " WHERE status = ANY($1::text[])",
            list(ACTIVE),
        )
    return {row["status"]: row["n"] for row in rows}, pending


# ---------------------------------------------------------------- the workers


@dataclass(frozen=True)
class TaskState:
    status: str | None  # None: the task is gone (deleted)
    options: CheckOptions

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


GONE = TaskState(None, CheckOptions())


async def start_task(db: asyncpg.Pool, task_id: UUID) -> TaskState:
    """A worker takes the task's first URL: pending becomes running (once)."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "WITH started AS ("
            "  UPDATE tasks SET status = 'running', started_at = coalesce(started_at, now())"
            "  WHERE id = $1 AND status = 'pending' RETURNING status, options)"
            " SELECT status, options::text AS options FROM started"
            " UNION ALL SELECT status, options::text FROM tasks"
            "  WHERE id = $1 AND NOT EXISTS (SELECT FROM started)",
            task_id,
        )
    if row is None:
        return GONE
    options = orjson.loads(row["options"])
    return TaskState(row["status"], CheckOptions(**options))


async def task_statuses(db: asyncpg.Pool, task_ids: Sequence[UUID]) -> dict[UUID, str]:
    """The status of each task that still exists."""
    rows = await db.fetch("SELECT id, status FROM tasks WHERE id = ANY($1::uuid[])", task_ids)
    return {row["id"]: row["status"] for row in rows}


def error_json(result: CheckResult) -> str | None:
    return None if result.error_kind is None else orjson.dumps(result.error_detail).decode()


@dataclass(frozen=True)
class Checked:
    task_id: UUID
    position: int
    result: CheckResult


async def record_results(
    conn: asyncpg.Connection, checked: Sequence[Checked]
) -> tuple[set[tuple[UUID, int]], list[UUID], set[UUID]]:
    """Record results in one transaction: those of URLs without one yet, of tasks still
    active. Returns the (task, position) pairs recorded now, the tasks this made ready,
    and the tasks that were no longer active (cancelled, deleted or ready)."""
    task_ids = sorted({item.task_id for item in checked})
    async with conn.transaction():
        # Locked in id order (so two workers' batches never deadlock), and so no result
        # and no cancellation slips in between the counts and the status.
        active = await conn.fetch(
            "SELECT id FROM tasks WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[])"
            " ORDER BY id FOR UPDATE",
            task_ids,
            list(ACTIVE),
        )
        active_ids = {row["id"] for row in active}
        inactive = set(task_ids) - active_ids
        rows = [item for item in checked if item.task_id in active_ids]
        if not rows:
            return set(), [], inactive
        recorded = await conn.fetch(
            "UPDATE task_urls AS u SET status_code = r.status_code, final_url = r.final_url,"
            " redirects = r.redirects, elapsed_ms = r.elapsed_ms, attempts = r.attempts,"
            " error_kind = r.error_kind, error_detail = r.error_detail,"
            " checked_at = r.checked_at"
            " FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::int[],"
            "   $6::float8[], $7::int[], $8::text[], $9::jsonb[], $10::timestamptz[])"
            "  AS r(task_id, position, status_code, final_url, redirects, elapsed_ms,"
            "   attempts, error_kind, error_detail, checked_at)"
            " WHERE u.task_id = r.task_id AND u.position = r.position AND u.checked_at IS NULL"
            " RETURNING u.task_id, u.position, u.error_kind IS NULL AS ok",
            [item.task_id for item in rows],
            [item.position for item in rows],
            [item.result.status_code for item in rows],
            [item.result.final_url for item in rows],
            [item.result.redirects for item in rows],
            [item.result.elapsed_ms for item in rows],
            [item.result.attempts for item in rows],
            [item.result.error_kind for item in rows],
            [
                None
                if item.result.error_kind is None
                else orjson.dumps(item.result.error_detail).decode()
                for item in rows
            ],
            [item.result.checked_at for item in rows],
        )
        if not recorded:
            return set(), [], inactive
        counts: dict[UUID, list[int]] = {}
        for row in recorded:
            count = counts.setdefault(row["task_id"], [0, 0])
            count[0 if row["ok"] else 1] += 1
        ready = await conn.fetch(
            "UPDATE tasks AS t SET done = t.done + c.ok, failed = t.failed + c.bad,"
            " status = CASE WHEN t.done + c.ok + t.failed + c.bad = t.total"
            "   THEN 'ready' ELSE 'running' END,"
            " started_at = coalesce(t.started_at, now()),"
            " finished_at = CASE WHEN t.done + c.ok + t.failed + c.bad = t.total"
            "   THEN now() END"
            " FROM unnest($1::uuid[], $2::int[], $3::int[]) AS c(id, ok, bad)"
            " WHERE t.id = c.id RETURNING t.id, t.status",
            list(counts),
            [count[0] for count in counts.values()],
            [count[1] for count in counts.values()],
        )
    return (
        {(row["task_id"], row["position"]) for row in recorded},
        [row["id"] for row in ready if row["status"] == "ready"],
        inactive,
    )

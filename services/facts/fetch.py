"""Fetching N distinct cat facts concurrently from a catfact-shaped upstream.

One request runs `min(N, concurrency)` workers. Each worker calls GET /fact, one call at
a time, while facts are still wanted (counting the calls in flight) and the budgets allow
another call:

    calls <= N + min(failed, retry budget) + min(duplicates, duplicate budget)

so the first N calls are the plain ones, a failed call (error status, timeout, open
circuit, unusable body) may be repeated while the retry budget lasts, and a fact seen
before may be replaced while the duplicate budget lasts. The budgets are shares of N, so
a failing upstream is never sent more than N x (1 + retry share) calls by one request.

The kit client's own retries are off for this upstream (see app.py): the retry budget is
the one place that repeats calls. Its circuit breaker stays on: once it opens, calls fail
at once without reaching the upstream, the budgets run out quickly, and the request
answers with what it has (or 502) instead of waiting on a dead upstream.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, StringConstraints, ValidationError

from services.kit.context import current_deadline
from services.kit.errors import ApiError
from services.kit.http_client import HttpClient

UPSTREAM = "catfact"  # the upstream's name in the kit client and its metrics
ANSWER_RESERVE = 0.25  # seconds kept before the request deadline to answer what arrived


@dataclass(frozen=True)
class Limits:
    concurrency: int  # calls in flight per request
    retry_share: float  # failed calls repeated, as a share of the amount
    duplicate_share: float  # calls replacing duplicates, as a share of the amount


@dataclass(frozen=True)
class Fetched:
    facts: list[str]
    calls: int
    failed: int  # calls that gave no fact: errors, timeouts, cut off at the deadline
    duplicates: int


class UpstreamFact(BaseModel):
    """The part of catfact's `{"fact": "...", "length": n}` that is used."""

    fact: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


async def fetch_facts(client: HttpClient, amount: int, limits: Limits) -> Fetched:
    """Up to `amount` distinct facts; fewer when the budgets or the deadline run out."""
    run = _Run(client, amount, limits)
    deadline = current_deadline()
    try:
        async with (
            asyncio.timeout_at(None if deadline is None else deadline - ANSWER_RESERVE),
            asyncio.TaskGroup() as workers,
        ):
            for _ in range(min(amount, limits.concurrency)):
                workers.create_task(run.worker())
    except TimeoutError:
        pass  # the request deadline is near: the calls still in flight count as failed
    facts = list(run.facts)
    return Fetched(facts, run.calls, run.calls - len(facts) - run.duplicates, run.duplicates)


class _Run:
    def __init__(self, client: HttpClient, amount: int, limits: Limits) -> None:
        self.client = client
        self.amount = amount
        self.retry_budget = math.ceil(amount * limits.retry_share)
        self.duplicate_budget = math.ceil(amount * limits.duplicate_share)
        self.facts: dict[str, None] = {}  # an insertion-ordered set
        self.calls = self.failed = self.duplicates = 0

    def may_call(self) -> bool:
        answered = len(self.facts) + self.failed + self.duplicates
        in_flight = self.calls - answered
        wanted = self.amount - len(self.facts) - in_flight
        allowed = (
            self.amount
            + min(self.failed, self.retry_budget)
            + min(self.duplicates, self.duplicate_budget)
        )
        return wanted > 0 and self.calls < allowed

    async def worker(self) -> None:
        while self.may_call():
            self.calls += 1
            fact = await self.one_fact()
            if fact is None:
                self.failed += 1
            elif fact in self.facts:
                self.duplicates += 1
            else:
                self.facts[fact] = None

    async def one_fact(self) -> str | None:
        try:
            response = await self.client.get(UPSTREAM, "/fact")
        except ApiError:  # unreachable, timed out, circuit open, bulkhead full
            return None
        if response.status != 200:
            return None
        try:
            return UpstreamFact.model_validate_json(response.body).fact
        except ValidationError:
            return None

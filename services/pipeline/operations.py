"""The operations a pipeline step can name: calc's, facts, factcheck and `wait`.

Every call goes through the kit's outbound client (timeouts, retries, breaker, metrics,
request id); calc is reached over its Service (CALC_URL). facts and factcheck are
optional: without FACTS_URL / FACTCHECK_URL their steps fail with a 503 saying so.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from services.kit.errors import ApiError
from services.kit.http_client import HttpClient, UpstreamResponse

from .dag import Operation, StepFailed

# calc's operations; each answers one field named after it, e.g. {"sum": 55}.
CALC = ("sum", "product", "squares", "roots", "ratios", "quotient")
# The fields of each operation's output that references may name.
FIELDS = {
    **{name: frozenset({name}) for name in CALC},
    "facts": frozenset({"facts", "requested", "returned"}),
    "factcheck": frozenset({"facts"}),
    "wait": frozenset({"waited_ms"}),
}
MAX_WAIT_MS = 60_000


async def _call(client: HttpClient, upstream: str, method: str, path: str, **kwargs: Any) -> Any:
    """The upstream's JSON answer, or StepFailed with its error (4xx as they came, 5xx
    and failed calls as 502/503/504)."""
    try:
        response = await client.request(upstream, method, path, **kwargs)
    except ApiError as error:  # UpstreamUnavailable, UpstreamTimeout
        raise StepFailed(error.message, code=error.code, status=error.status) from None
    if not response.ok:
        raise _upstream_error(upstream, response)
    return response.json()


def _upstream_error(upstream: str, response: UpstreamResponse) -> StepFailed:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status >= 500:
        message = f"{upstream} answered {response.status}: {body.get('error', 'no error body')}"
        return StepFailed(message, code="bad_gateway", status=502)
    return StepFailed(
        str(body.get("error", f"{upstream} answered {response.status}")),
        code=str(body.get("code", "upstream_error")),
        status=response.status,
        details=body.get("details") if isinstance(body.get("details"), list) else [],
    )


Run = Callable[[Any], Awaitable[Any]]


def _pure_post(client: HttpClient, upstream: str, path: str) -> Run:
    async def run(step_input: Any) -> Any:
        # A pure computation: safe to repeat, so a key lets the client retry it.
        key = uuid.uuid4().hex
        return await _call(client, upstream, "POST", path, json=step_input, idempotency_key=key)

    return run


def _facts(client: HttpClient) -> Run:
    async def run(step_input: Any) -> Any:
        amount = step_input.get("amount") if isinstance(step_input, dict) else None
        return await _call(client, "facts", "GET", "/api/v1/cats", params={"amount": str(amount)})

    return run


def _not_configured(upstream: str) -> Run:
    async def run(step_input: Any) -> Any:
        raise StepFailed(
            f"{upstream} is not configured: {upstream.upper()}_URL is not set",
            code="not_configured",
            status=503,
        )

    return run


async def wait(step_input: Any) -> dict[str, int]:
    """The built-in `wait` {"ms": n}: sleeps, calls nothing (timing and tests)."""
    ms = step_input.get("ms") if isinstance(step_input, dict) else None
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_WAIT_MS:
        raise StepFailed(
            f'wait takes {{"ms": an integer from 0 to {MAX_WAIT_MS}}}',
            code="validation_error",
            status=400,
        )
    await asyncio.sleep(ms / 1000)
    return {"waited_ms": ms}


def operations(client: HttpClient, configured: Collection[str]) -> dict[str, Operation]:
    """Every operation, bound to the client; `configured`: the upstreams it can call."""
    runs: dict[str, Run] = {
        name: _pure_post(client, "calc", f"/api/v1/calc/{name}") for name in CALC
    }
    runs["wait"] = wait
    runs["facts"] = _facts(client) if "facts" in configured else _not_configured("facts")
    runs["factcheck"] = (
        _pure_post(client, "factcheck", "/api/v1/facts")
        if "factcheck" in configured
        else _not_configured("factcheck")
    )
    return {name: Operation(run, FIELDS[name]) for name, run in runs.items()}

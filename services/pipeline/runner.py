"""The executor as the service uses it: its operations, its limits, errors as answers."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from services.kit.errors import ApiError, field_error
from services.kit.keys import HTTP_CLIENT

from .dag import InvalidGraph, Limits, Operation, RunResult, Step, execute
from .operations import operations


class Runner:
    def __init__(self, operations: Mapping[str, Operation], limits: Limits) -> None:
        self.operations = operations
        self.limits = limits

    async def run(
        self,
        steps: Mapping[str, Step],
        run_input: Any,
        *,
        timeout_ms: int | None = None,
        max_concurrency: int | None = None,
    ) -> RunResult:
        """Run a graph; an invalid one, or limits above the service's, is an ApiError."""
        limits = self.limits
        if timeout_ms is not None:
            _at_most("timeout_ms", timeout_ms, limits.run_timeout * 1000)
            limits = dataclasses.replace(limits, run_timeout=timeout_ms / 1000)
        if max_concurrency is not None:
            _at_most("max_concurrency", max_concurrency, limits.max_concurrency)
            limits = dataclasses.replace(limits, max_concurrency=max_concurrency)
        try:
            return await execute(steps, self.operations, run_input, limits)
        except InvalidGraph as invalid:
            raise ApiError(
                invalid.status, invalid.message, code=invalid.code, details=invalid.details
            ) from None


def _at_most(name: str, value: float, limit: float) -> None:
    # A 422, not a 400: the limit is this deployment's setting, not a rule of the API
    # its document could state.
    if value > limit:
        raise ApiError(
            422,
            f"{name} is at most {limit:g} on this service",
            code="over_service_limit",
            details=[field_error(name, f"must be at most {limit:g}", "less_than_equal")],
        )


RUNNER = web.AppKey("runner", Runner)


def runner_ctx(limits: Limits, upstreams: Mapping[str, str]) -> Any:
    """Binds the operations to the kit's client once it exists."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[RUNNER] = Runner(operations(app[HTTP_CLIENT], configured=upstreams.keys()), limits)
        yield

    return ctx

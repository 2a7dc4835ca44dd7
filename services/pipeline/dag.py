"""The DAG executor: runs a graph of steps, each the moment its inputs exist.

Plain asyncio, no HTTP: an operation is any coroutine function from a JSON-like input
to a JSON-like output, so the executor is tested with fake operations and the service
plugs in the ones that call calc, facts and factcheck.

A step names an operation and its input. Anywhere in that input, `{"$ref": "a.b.0"}`
stands for a value: `input.<path>` in the run's input, or `<step>.<path>` in the output
of another step, which makes that step a dependency. The graph is checked before
anything runs (too many steps: 413; unknown operation, step or field, a malformed
reference or a cycle: 400, naming what is wrong). Then every step starts as soon as the
steps it references have succeeded -- not level by level -- with at most
`max_concurrency` running at once, each within its timeout and all within the run's. A
failed step skips only the steps that depend on it, directly or not; independent
branches go on. The result holds each step's output or error and its start and end in
milliseconds since the run started, and the run's total time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("agora.pipeline")

REF = "$ref"
RUN_INPUT = "input"  # the name references use for the run's own input
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"


# ---------------------------------------------------------------- the graph


@dataclass(frozen=True)
class Operation:
    run: Callable[[Any], Awaitable[Any]]
    # The top-level fields of its output that references may name; None: any.
    fields: frozenset[str] | None = None


@dataclass(frozen=True)
class Step:
    op: str
    input: Any
    timeout: float | None = None  # seconds; None: Limits.step_timeout


@dataclass(frozen=True)
class Limits:
    max_steps: int = 200
    max_concurrency: int = 16
    step_timeout: float = 5.0
    run_timeout: float = 8.0


def ref(path: str) -> dict[str, str]:
    """A reference, for graphs written in Python (the ready-made flows)."""
    return {REF: path}


class InvalidGraph(Exception):
    """The graph cannot run: a 4xx answer, with what is wrong in `details`."""

    def __init__(
        self, status: int, message: str, *, code: str, details: list[dict[str, str]]
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.details = details


class StepFailed(Exception):
    """Raised by an operation: why it failed, and the HTTP status that says so."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "step_failed",
        status: int = 502,
        details: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error = {"error": message, "code": code, "status": status, "details": details or []}


# ---------------------------------------------------------------- results


@dataclass
class StepResult:
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    started_ms: float | None = None
    ended_ms: float | None = None


@dataclass
class RunResult:
    total_ms: float
    steps: dict[str, StepResult] = field(default_factory=dict)

    @property
    def status(self) -> str:
        ok = all(result.status == SUCCEEDED for result in self.steps.values())
        return SUCCEEDED if ok else FAILED

    def failures(self) -> list[tuple[str, dict[str, Any]]]:
        """The steps that failed themselves (not the ones skipped), in graph order."""
        return [
            (name, result.error)
            for name, result in self.steps.items()
            if result.status == FAILED and result.error is not None
        ]


def _error(message: str, code: str, status: int) -> dict[str, Any]:
    return {"error": message, "code": code, "status": status, "details": []}


# ---------------------------------------------------------------- checking


def _references(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every reference in an input, with where it is (for error details)."""
    if isinstance(value, dict):
        if REF in value:
            yield where, value
            return
        for key, item in value.items():
            yield from _references(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{where}.{index}")


def _walk(value: Any, path: list[str]) -> Any:
    """The value at `path` inside `value`; KeyError naming the first segment missing."""
    for segment in path:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            raise KeyError(segment)
    return value


def _detail(where: str, message: str, kind: str) -> dict[str, str]:
    return {"field": where, "location": "body", "message": message, "type": kind}


def plan(
    steps: Mapping[str, Step],
    operations: Mapping[str, Operation],
    run_input: Any,
    limits: Limits,
) -> dict[str, set[str]]:
    """Check the graph; return each step's dependencies, or raise InvalidGraph."""
    if len(steps) > limits.max_steps:
        raise InvalidGraph(
            413,
            f"A run may have at most {limits.max_steps} steps, not {len(steps)}",
            code="too_many_steps",
            details=[],
        )
    problems: list[dict[str, str]] = []
    needs: dict[str, set[str]] = {name: set() for name in steps}
    for name, step in steps.items():
        where = f"steps.{name}"
        if name == RUN_INPUT or not STEP_NAME.match(name):
            problems.append(
                _detail(where, "step names are letters, digits, _ and -, not 'input'", "name")
            )
        if step.op not in operations:
            known = ", ".join(sorted(operations))
            problems.append(
                _detail(f"{where}.op", f"unknown operation {step.op!r}; known: {known}", "op")
            )
        for at, reference in _references(step.input, f"{where}.input"):
            problem = _check_reference(reference, steps, operations, run_input)
            if problem is None:
                target = reference[REF].split(".")[0]
                if target != RUN_INPUT:
                    needs[name].add(target)
            else:
                problems.append(_detail(at, problem, "reference"))
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        raise InvalidGraph(400, f"Invalid graph: {summary}", code="invalid_graph", details=problems)
    cycle = find_cycle(needs)
    if cycle:
        raise InvalidGraph(
            400,
            "Steps form a cycle: " + " -> ".join(cycle),
            code="cycle",
            details=[_detail(f"steps.{n}", "is part of a cycle", "cycle") for n in cycle[:-1]],
        )
    return needs


def _check_reference(
    reference: dict[str, Any],
    steps: Mapping[str, Step],
    operations: Mapping[str, Operation],
    run_input: Any,
) -> str | None:
    """What is wrong with one reference, or None."""
    path = reference[REF]
    if len(reference) != 1 or not isinstance(path, str) or not path:
        return 'a reference is {"$ref": "<step or input>.<field>..."} and nothing else'
    target, *fields = path.split(".")
    if target == RUN_INPUT:
        try:
            _walk(run_input, fields)
        except KeyError as missing:
            return f"the run's input has no field {missing.args[0]!r} (in {path!r})"
        return None
    if target not in steps:
        return f"unknown step {target!r}"
    operation = operations.get(steps[target].op)
    known = operation.fields if operation else None
    if fields and known is not None and fields[0] not in known:
        return f"step {target!r} ({steps[target].op}) has no field {fields[0]!r}; it has: " + (
            ", ".join(sorted(known))
        )
    return None


def find_cycle(needs: Mapping[str, set[str]]) -> list[str] | None:
    """A cycle as [a, b, ..., a] (each step needs the next), or None. Iterative DFS,
    so a long chain cannot hit the recursion limit."""
    VISITING, DONE = 1, 2
    state: dict[str, int] = {}
    for root in needs:
        if root in state:
            continue
        state[root] = VISITING
        path = [root]
        stack = [iter(sorted(needs[root]))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = DONE
                stack.pop()
            elif state.get(child) == VISITING:
                return [*path[path.index(child) :], child]
            elif child not in state:
                state[child] = VISITING
                path.append(child)
                stack.append(iter(sorted(needs[child])))
    return None


# ---------------------------------------------------------------- running


def resolve(value: Any, outputs: Mapping[str, Any], run_input: Any) -> Any:
    """The input with every reference replaced by the value it names."""
    if isinstance(value, dict):
        if REF in value:
            target, *path = value[REF].split(".")
            source = run_input if target == RUN_INPUT else outputs[target]
            try:
                return _walk(source, path)
            except KeyError as missing:
                raise StepFailed(
                    f"{value[REF]}: no field or index {missing.args[0]!r}",
                    code="bad_reference",
                    status=400,
                ) from None
        return {key: resolve(item, outputs, run_input) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, outputs, run_input) for item in value]
    return value


async def execute(
    steps: Mapping[str, Step],
    operations: Mapping[str, Operation],
    run_input: Any = None,
    limits: Limits | None = None,
) -> RunResult:
    """Check, then run the graph; raises InvalidGraph before anything runs."""
    limits = limits or Limits()
    needs = plan(steps, operations, run_input, limits)
    return await _Run(steps, operations, run_input, limits, needs).run()


class _Run:
    def __init__(
        self,
        steps: Mapping[str, Step],
        operations: Mapping[str, Operation],
        run_input: Any,
        limits: Limits,
        needs: dict[str, set[str]],
    ) -> None:
        self.steps = steps
        self.operations = operations
        self.run_input = run_input
        self.limits = limits
        # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds.
        self.clock = time.perf_counter
        self.started = self.clock()
        self.waiting_for = {name: len(deps) for name, deps in needs.items()}
        self.dependents: dict[str, list[str]] = {name: [] for name in steps}
        for name, deps in needs.items():
            for dependency in deps:
                self.dependents[dependency].append(name)
        self.slots = asyncio.Semaphore(limits.max_concurrency)
        self.outputs: dict[str, Any] = {}
        self.results: dict[str, StepResult] = {}
        self.began: dict[str, float] = {}
        self.running: dict[asyncio.Task[None], str] = {}

    def ms(self, moment: float) -> float:
        return round((moment - self.started) * 1000, 3)

    async def run(self) -> RunResult:
        deadline = self.started + self.limits.run_timeout
        for name, count in self.waiting_for.items():
            if count == 0:
                self.start(name)
        try:
            while self.running:
                done, _ = await asyncio.wait(
                    self.running,
                    timeout=max(0.0, deadline - self.clock()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    await self.time_out()
                    break
                for task in done:
                    self.finished(self.running.pop(task))
        finally:
            # Only left running if the caller was cancelled (client gone, request
            # deadline): the steps must not outlive it.
            for task in self.running:
                task.cancel()
        # Results in the order the steps were given, whatever order they finished in.
        steps = {name: self.results[name] for name in self.steps}
        return RunResult(self.ms(self.clock()), steps)

    def start(self, name: str) -> None:
        task = asyncio.create_task(self.run_step(name), name=f"step {name}")
        self.running[task] = name

    def finished(self, name: str) -> None:
        if self.results[name].status != SUCCEEDED:
            self.skip_dependents(name, f"skipped because {name} failed")
            return
        for dependent in self.dependents[name]:
            self.waiting_for[dependent] -= 1
            if self.waiting_for[dependent] == 0 and dependent not in self.results:
                self.start(dependent)

    def skip_dependents(self, name: str, why: str) -> None:
        """Skip everything downstream of `name`; none of it can have started."""
        pending = list(self.dependents[name])
        while pending:
            dependent = pending.pop()
            if dependent not in self.results:
                self.results[dependent] = StepResult(
                    SKIPPED, error=_error(why, "dependency_failed", 424)
                )
                pending.extend(self.dependents[dependent])

    async def run_step(self, name: str) -> None:
        step = self.steps[name]
        async with self.slots:
            began = self.began[name] = self.clock()
            timeout = step.timeout or self.limits.step_timeout
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    step_input = resolve(step.input, self.outputs, self.run_input)
                    output = await self.operations[step.op].run(step_input)
            except StepFailed as failure:
                self.record(name, began, error=failure.error)
            except TimeoutError:
                # Its own time limit, or one inside the operation (none of ours).
                message = f"did not finish within {timeout * 1000:g} ms"
                if not scope.expired():
                    message = f"timed out inside {step.op}"
                self.record(name, began, error=_error(message, "timeout", 504))
            except Exception:
                log.exception("step %s (%s) failed unexpectedly", name, step.op)
                self.record(name, began, error=_error("internal error", "internal", 500))
            else:
                self.outputs[name] = output
                self.record(name, began, output=output)

    def record(
        self, name: str, began: float, *, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        self.results[name] = StepResult(
            FAILED if error else SUCCEEDED, output, error, self.ms(began), self.ms(self.clock())
        )

    async def time_out(self) -> None:
        """The run's deadline passed: cancel what runs, skip what has not started."""
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        ended = self.clock()
        why = f"the run did not finish within {self.limits.run_timeout * 1000:g} ms"
        for name in self.steps:
            if name in self.results:
                continue
            if name in self.began:  # running when the deadline came
                self.results[name] = StepResult(
                    FAILED,
                    error=_error(f"cancelled: {why}", "run_timeout", 504),
                    started_ms=self.ms(self.began[name]),
                    ended_ms=self.ms(ended),
                )
            else:
                self.results[name] = StepResult(
                    SKIPPED, error=_error(f"not started: {why}", "run_timeout", 504)
                )
        self.running.clear()

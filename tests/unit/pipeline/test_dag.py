"""The DAG executor on its own, with fake operations (no HTTP).

The timing assertions here are the concurrency evidence the issue asks for, read from
the start and end times the executor reports, with generous margins.
"""

from __future__ import annotations

import asyncio

import pytest

from services.pipeline.dag import (
    FAILED,
    SKIPPED,
    SUCCEEDED,
    InvalidGraph,
    Limits,
    Operation,
    Step,
    StepFailed,
    execute,
    find_cycle,
    ref,
)


async def wait(step_input):
    await asyncio.sleep(step_input["ms"] / 1000)
    return {"waited_ms": step_input["ms"]}


async def add(step_input):
    return {"sum": sum(step_input["numbers"])}


async def echo(step_input):
    return step_input


async def refuse(step_input):
    raise StepFailed("Cannot divide by zero", code="division_by_zero", status=422)


async def crash(step_input):
    raise RuntimeError("a bug")


class Gauge:
    """An operation that records how many of its calls run at once."""

    def __init__(self):
        self.now = 0
        self.peak = 0

    async def __call__(self, step_input):
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(step_input["ms"] / 1000)
        finally:
            self.now -= 1
        return {}


OPERATIONS = {
    "wait": Operation(wait, frozenset({"waited_ms"})),
    "add": Operation(add, frozenset({"sum"})),
    "echo": Operation(echo),
    "refuse": Operation(refuse, frozenset({"quotient"})),
    "crash": Operation(crash),
}


def waits(ms: int, *after: str) -> Step:
    """A wait step that also depends on the steps named."""
    return Step("wait", {"ms": ms, "after": [ref(f"{name}.waited_ms") for name in after]})


# ---------------------------------------------------------------- results and order


async def test_outputs_flow_along_references():
    steps = {
        "total": Step("add", {"numbers": ref("input.numbers")}),
        "twice": Step("add", {"numbers": [ref("total.sum"), ref("total.sum")]}),
        "both": Step(
            "echo", {"pair": [ref("total"), ref("twice.sum")], "first": ref("input.numbers.0")}
        ),
    }
    result = await execute(steps, OPERATIONS, {"numbers": [1, 2, 3]})
    assert result.status == SUCCEEDED
    assert result.steps["total"].output == {"sum": 6}
    assert result.steps["twice"].output == {"sum": 12}
    assert result.steps["both"].output == {"pair": [{"sum": 6}, 12], "first": 1}
    assert list(result.steps) == ["total", "twice", "both"]  # as given


async def test_a_dependent_starts_only_after_what_it_references():
    steps = {"c": waits(10, "b"), "b": waits(10, "a"), "a": waits(10)}
    result = await execute(steps, OPERATIONS)
    a, b, c = (result.steps[name] for name in "abc")
    assert a.ended_ms <= b.started_ms and b.ended_ms <= c.started_ms


# ---------------------------------------------------------------- concurrency evidence


async def test_independent_steps_run_concurrently():
    # a and b (300 ms each) together, then c (300 ms): about 600 ms, not 900.
    steps = {"a": waits(300), "b": waits(300), "c": waits(300, "a", "b")}
    result = await execute(steps, OPERATIONS)
    a, b, c = (result.steps[name] for name in "abc")
    assert a.started_ms < 100 and b.started_ms < 100
    assert c.started_ms >= max(a.ended_ms, b.ended_ms)
    assert 550 < result.total_ms < 800, result


async def test_a_step_starts_when_its_own_inputs_are_ready_not_with_a_level():
    # A (100 ms) -> B, and an unrelated slow C (600 ms): B starts when A ends.
    steps = {"A": waits(100), "B": waits(100, "A"), "C": waits(600)}
    result = await execute(steps, OPERATIONS)
    a, b, c = (result.steps[name] for name in "ABC")
    assert b.started_ms >= a.ended_ms
    assert b.started_ms - a.ended_ms < 100
    assert b.ended_ms < c.ended_ms - 200  # B was done long before C


async def test_concurrency_is_bounded():
    gauge = Gauge()
    operations = {**OPERATIONS, "gauge": Operation(gauge)}
    steps = {f"s{i}": Step("gauge", {"ms": 30}) for i in range(8)}
    result = await execute(steps, operations, limits=Limits(max_concurrency=3))
    assert result.status == SUCCEEDED
    assert gauge.peak == 3


# ---------------------------------------------------------------- failures


async def test_a_failure_skips_only_what_depends_on_it():
    steps = {
        "divide": Step("refuse", {}),
        "after": Step("echo", {"q": ref("divide.quotient")}),
        "later": Step("echo", {"x": ref("after")}),
        "other": waits(50),
        "other_after": waits(10, "other"),
    }
    result = await execute(steps, OPERATIONS)
    assert result.status == FAILED
    assert result.steps["divide"].status == FAILED
    assert result.steps["divide"].error == {
        "error": "Cannot divide by zero",
        "code": "division_by_zero",
        "status": 422,
        "details": [],
    }
    for name in ("after", "later"):
        skipped = result.steps[name]
        assert skipped.status == SKIPPED and skipped.started_ms is None
        assert skipped.error["error"] == "skipped because divide failed"
        assert skipped.error["code"] == "dependency_failed"
    assert result.steps["other"].status == SUCCEEDED
    assert result.steps["other_after"].status == SUCCEEDED
    assert result.failures() == [("divide", result.steps["divide"].error)]


async def test_an_unexpected_exception_is_an_internal_step_error(caplog):
    result = await execute({"bug": Step("crash", {}), "fine": waits(0)}, OPERATIONS)
    assert result.steps["bug"].error["code"] == "internal"
    assert "a bug" not in result.steps["bug"].error["error"]  # logged, not answered
    assert "a bug" in caplog.text
    assert result.steps["fine"].status == SUCCEEDED


async def test_a_reference_into_a_missing_index_fails_that_step():
    steps = {
        "total": Step("add", {"numbers": [1]}),
        "pick": Step("echo", {"x": ref("total.sum.0")}),
    }
    result = await execute(steps, OPERATIONS)
    assert result.steps["total"].status == SUCCEEDED
    assert result.steps["pick"].error["code"] == "bad_reference"


# ---------------------------------------------------------------- timeouts


async def test_a_step_past_its_timeout_fails_and_the_rest_go_on():
    steps = {
        "slow": Step("wait", {"ms": 5000}, timeout=0.1),
        "after_slow": waits(0, "slow"),
        "quick": waits(0),
    }
    result = await execute(steps, OPERATIONS)
    assert result.steps["slow"].error["code"] == "timeout"
    assert result.steps["slow"].error["error"] == "did not finish within 100 ms"
    assert result.steps["after_slow"].status == SKIPPED
    assert result.steps["quick"].status == SUCCEEDED


async def test_the_default_step_timeout_applies():
    result = await execute(
        {"slow": waits(5000)}, OPERATIONS, limits=Limits(step_timeout=0.05, run_timeout=5)
    )
    assert result.steps["slow"].error["code"] == "timeout"


async def test_the_run_timeout_cancels_what_runs_and_skips_what_waits():
    steps = {
        "done": waits(0),
        "running": waits(5000),
        "waiting": waits(0, "running"),
    }
    result = await execute(steps, OPERATIONS, limits=Limits(run_timeout=0.2, step_timeout=10))
    assert result.steps["done"].status == SUCCEEDED
    running = result.steps["running"]
    assert running.status == FAILED and running.error["code"] == "run_timeout"
    assert running.ended_ms is not None
    waiting = result.steps["waiting"]
    assert waiting.status == SKIPPED and waiting.error["code"] == "run_timeout"


async def test_cancelling_the_run_cancels_its_steps():
    cancelled = asyncio.Event()

    async def hang(step_input):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    operations = {**OPERATIONS, "hang": Operation(hang)}
    run = asyncio.create_task(execute({"h": Step("hang", {})}, operations))
    await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.wait_for(cancelled.wait(), 1)


# ---------------------------------------------------------------- checks before running


async def check_fails(steps, status=400, run_input=None, limits=None) -> InvalidGraph:
    started = []
    operations = {
        name: Operation(
            lambda step_input, op=op: started.append(1) or op.run(step_input), op.fields
        )
        for name, op in OPERATIONS.items()
    }
    with pytest.raises(InvalidGraph) as caught:
        await execute(steps, operations, run_input, limits)
    assert caught.value.status == status
    assert started == []  # nothing ran
    return caught.value


async def test_a_cycle_is_refused_naming_its_steps():
    steps = {
        "start": waits(0),
        "a": waits(0, "start", "c"),
        "b": waits(0, "a"),
        "c": waits(0, "b"),
    }
    error = await check_fails(steps)
    assert error.code == "cycle"
    assert error.message == "Steps form a cycle: a -> c -> b -> a"
    assert [d["field"] for d in error.details] == ["steps.a", "steps.c", "steps.b"]


async def test_a_step_referencing_itself_is_a_cycle():
    error = await check_fails({"a": waits(0, "a")})
    assert error.message == "Steps form a cycle: a -> a"


def test_find_cycle_on_a_long_chain_without_recursion():
    needs = {f"s{i}": {f"s{i + 1}"} for i in range(5000)}
    needs["s5000"] = set()
    assert find_cycle(needs) is None
    needs["s5000"] = {"s0"}
    assert len(find_cycle(needs)) == 5002


async def test_unknown_step_field_and_operation_are_refused():
    steps = {
        "a": Step("add", {"numbers": ref("nowhere.sum")}),
        "b": Step("add", {"numbers": [ref("a.total")]}),
        "c": Step("divide", {}),
        "d": Step("echo", {"x": ref("input.missing")}),
        "e": Step("echo", {"x": {"$ref": "a.sum", "extra": 1}}),
    }
    error = await check_fails(steps, run_input={"numbers": [1]})
    assert error.code == "invalid_graph"
    problems = {d["field"]: d["message"] for d in error.details}
    assert problems == {
        "steps.a.input.numbers": "unknown step 'nowhere'",
        "steps.b.input.numbers.0": "step 'a' (add) has no field 'total'; it has: sum",
        "steps.c.op": "unknown operation 'divide'; known: add, crash, echo, refuse, wait",
        "steps.d.input.x": "the run's input has no field 'missing' (in 'input.missing')",
        "steps.e.input.x": 'a reference is {"$ref": "<step or input>.<field>..."} and nothing else',
    }


async def test_input_is_not_a_step_name():
    error = await check_fails({"input": waits(0)})
    assert error.details[0]["field"] == "steps.input"


async def test_too_many_steps_is_413():
    steps = {f"s{i}": waits(0) for i in range(11)}
    error = await check_fails(steps, 413, limits=Limits(max_steps=10))
    assert error.code == "too_many_steps"
    result = await execute(dict(list(steps.items())[:10]), OPERATIONS, limits=Limits(max_steps=10))
    assert result.status == SUCCEEDED

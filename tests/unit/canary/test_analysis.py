"""The canary analysis' decisions on recorded Prometheus answers (answers/*.json, taken
from devstack's Prometheus), served by a local HTTP server as Prometheus serves them."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from services.kit.canary.analysis import (
    Decision,
    Plan,
    Thresholds,
    TrackStats,
    Verdict,
    analyse,
    by_track,
    judge,
    queries,
)
from services.kit.canary.prometheus import Prometheus, PrometheusUnavailable

ANSWERS = Path(__file__).parent / "answers"


def recorded(name: str) -> dict:
    """A recorded answer set: {"requests": answer, "errors": answer, "p99": answer}."""
    return json.loads((ANSWERS / f"{name}.json").read_text())


def kind_of(query: str) -> str:
    if query.startswith("histogram_quantile"):
        return "p99"
    return "errors" if 'status=~"5.."' in query else "requests"


class Traffic:
    """Records what the analysis asked of the traffic split."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def set_weight(self, weight: int) -> None:
        self.calls.append(f"weight {weight}")

    async def promote(self) -> None:
        self.calls.append("promote")

    async def rollback(self) -> None:
        self.calls.append("rollback")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def serve_answers(aiohttp_server, sequence: list[str]):
    """Prometheus answering each judgement with the next recorded set (the last repeats)."""
    asked: list[str] = []

    async def query(request: web.Request) -> web.Response:
        kind = kind_of(request.query["query"])
        asked.append(request.query["query"])
        index = min(sum(kind_of(q) == kind for q in asked) - 1, len(sequence) - 1)
        return web.json_response(recorded(sequence[index])[kind])

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}", asked


PLAN = Plan(
    service="catalog",
    steps=(20, 50),
    step_seconds=20,
    interval_seconds=10,
    max_waits=2,
    thresholds=Thresholds(min_requests=50),
)


async def run_on(url: str, plan: Plan = PLAN):
    traffic, clock, lines = Traffic(), Clock(), []
    async with aiohttp.ClientSession() as session:
        outcome = await analyse(
            plan,
            Prometheus(url, session, backoff=0.01),
            traffic,
            report=lines.append,
            sleep=clock.sleep,
            clock=clock,
        )
    return outcome, traffic.calls, lines


# ---------------------------------------------------------------- judging one window


def test_healthy_canary_passes():
    tracks = {
        track: TrackStats(
            requests=by_track(recorded("healthy")["requests"])[track],
            errors=by_track(recorded("healthy")["errors"]).get(track, 0.0),
            p99=by_track(recorded("healthy")["p99"]).get(track),
        )
        for track in ("stable", "canary")
    }
    assert judge(tracks, Thresholds(min_requests=50)).verdict is Verdict.PASS


def test_failing_canary_fails_on_its_error_ratio():
    answer = recorded("failing")
    requests, errors = by_track(answer["requests"]), by_track(answer["errors"])
    tracks = {t: TrackStats(requests[t], errors.get(t, 0.0), None) for t in requests}
    judgement = judge(tracks, Thresholds(min_requests=50))
    assert judgement.verdict is Verdict.FAIL
    assert "5xx ratio" in judgement.reason


def test_slow_canary_fails_on_p99():
    tracks = {
        "stable": TrackStats(1000, 0, 0.004),
        "canary": TrackStats(200, 0, 0.250),
    }
    judgement = judge(tracks, Thresholds())
    assert judgement.verdict is Verdict.FAIL
    assert "p99" in judgement.reason


def test_p99_within_ratio_and_slack_passes():
    tracks = {
        "stable": TrackStats(1000, 0, 0.100),
        "canary": TrackStats(200, 0, 0.170),  # 0.100 * 1.5 + 0.025 = 0.175 allowed
    }
    assert judge(tracks, Thresholds()).verdict is Verdict.PASS


def test_too_few_requests_on_either_track_waits():
    few = Thresholds(min_requests=100)
    assert (
        judge({"stable": TrackStats(500, 0, 0.01), "canary": TrackStats(99, 50, 1.0)}, few).verdict
        is Verdict.WAIT
    )
    assert judge({"canary": TrackStats(500, 0, 0.01)}, few).verdict is Verdict.WAIT
    assert judge({}, few).verdict is Verdict.WAIT


def test_same_error_ratio_as_stable_passes():
    # A dependency failing both tracks alike is not the canary's fault.
    tracks = {"stable": TrackStats(1000, 100, 0.01), "canary": TrackStats(200, 21, 0.01)}
    assert judge(tracks, Thresholds()).verdict is Verdict.PASS


def test_answers_without_requests_are_left_out():
    answer = recorded("idle")
    assert by_track(answer["p99"]) == {}


def test_error_answers_are_refused():
    with pytest.raises(PrometheusUnavailable):
        by_track({"status": "error", "errorType": "bad_data", "error": "parse error"})
    with pytest.raises(PrometheusUnavailable):
        by_track({"status": "success", "data": {"resultType": "matrix", "result": []}})


def test_queries_name_the_service_and_the_window():
    for query in queries("catalog", 29.6).values():
        assert 'service="catalog"' in query and "[30s]" in query
        assert "/healthz" in query  # the platform's routes are left out


def test_plan_from_values():
    plan = Plan.from_values(
        "orders",
        {
            "steps": [5, 100],
            "stepSeconds": 30,
            "intervalSeconds": 5,
            "minRequests": 10,
            "maxErrorRatioIncrease": 0.05,
            "maxP99Ratio": 2,
            "p99SlackMs": 10,
            "maxWaits": 1,
        },
    )
    assert plan.steps == (5, 100) and plan.step_seconds == 30 and plan.max_waits == 1
    assert plan.thresholds == Thresholds(10, 0.05, 2.0, 10.0)
    with pytest.raises(ValueError):
        Plan.from_values("orders", {"steps": [0, 50]})
    with pytest.raises(ValueError):
        Plan.from_values("orders", {"stepSeconds": 5, "intervalSeconds": 10})


# ---------------------------------------------------------------- the steps


async def test_healthy_canary_is_promoted_after_every_step(aiohttp_server):
    url, asked = await serve_answers(aiohttp_server, ["healthy"])
    outcome, calls, lines = await run_on(url)
    assert all('service="catalog"' in query for query in asked)
    assert outcome.decision is Decision.PROMOTED
    assert calls == ["weight 20", "weight 50", "promote"]
    assert outcome.seconds == 40  # two steps of 20 s
    assert any("step 2/2: weight 50" in line for line in lines)


async def test_failing_canary_is_rolled_back_at_the_first_judgement(aiohttp_server):
    url, _ = await serve_answers(aiohttp_server, ["failing"])
    outcome, calls, _ = await run_on(url)
    assert outcome.decision is Decision.ROLLED_BACK
    assert calls == ["weight 20", "rollback"]
    assert outcome.seconds == 10
    assert "5xx ratio" in outcome.reason


async def test_too_few_requests_waits_then_passes(aiohttp_server):
    url, _ = await serve_answers(aiohttp_server, ["idle", "idle", "healthy"])
    outcome, calls, lines = await run_on(url)
    assert outcome.decision is Decision.PROMOTED
    assert calls == ["weight 20", "weight 50", "promote"]
    assert sum("wait" in line for line in lines) == 2
    assert outcome.seconds == 50  # the first step waited one interval longer


async def test_too_few_requests_for_too_long_rolls_back(aiohttp_server):
    url, _ = await serve_answers(aiohttp_server, ["idle"])
    outcome, calls, _ = await run_on(url)
    assert outcome.decision is Decision.ROLLED_BACK
    assert calls == ["weight 20", "rollback"]
    assert "no verdict" in outcome.reason
    assert outcome.seconds == PLAN.step_seconds + PLAN.max_waits * PLAN.interval_seconds


async def test_prometheus_down_rolls_back(unused_tcp_port):
    outcome, calls, _ = await run_on(f"http://127.0.0.1:{unused_tcp_port}")
    assert outcome.decision is Decision.ROLLED_BACK
    assert calls == ["weight 20", "rollback"]
    assert "Prometheus unavailable" in outcome.reason


async def test_prometheus_errors_roll_back(aiohttp_server):
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "error": "overloaded"}, status=503)

    app = web.Application()
    app.router.add_get("/api/v1/query", broken)
    server = await aiohttp_server(app)
    outcome, calls, _ = await run_on(f"http://127.0.0.1:{server.port}")
    assert outcome.decision is Decision.ROLLED_BACK
    assert calls == ["weight 20", "rollback"]
    assert "HTTP 503" in outcome.reason


async def test_prometheus_recovering_within_the_retries_is_no_failure(aiohttp_server):
    failures = {"left": 2}

    async def flaky(request: web.Request) -> web.Response:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=502)
        return web.json_response(recorded("healthy")[kind_of(request.query["query"])])

    app = web.Application()
    app.router.add_get("/api/v1/query", flaky)
    server = await aiohttp_server(app)
    outcome, calls, _ = await run_on(f"http://127.0.0.1:{server.port}")
    assert outcome.decision is Decision.PROMOTED
    assert calls[-1] == "promote"


async def test_a_failure_to_set_the_weight_rolls_back_first(aiohttp_server):
    url, _ = await serve_answers(aiohttp_server, ["healthy"])

    class Broken(Traffic):
        async def set_weight(self, weight: int) -> None:
            await super().set_weight(weight)
            if weight == 50:
                raise RuntimeError("ingress gone")

    traffic, clock = Broken(), Clock()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RuntimeError):
            await analyse(
                PLAN,
                Prometheus(url, session),
                traffic,
                report=lambda _: None,
                sleep=clock.sleep,
                clock=clock,
            )
    assert traffic.calls == ["weight 20", "weight 50", "rollback"]

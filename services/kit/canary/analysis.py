"""The analysis of a canary: what to ask Prometheus, how to judge the answer, and the
steps from the first weight to promotion or rollback.

Every step sets the canary's weight, then judges the canary against stable over the time
spent at that weight, every `interval_seconds`:

- FAIL: the canary answers 5xx more often than stable by more than
  `max_error_ratio_increase`, or its p99 is above stable's times `max_p99_ratio` plus
  `p99_slack_ms`. The canary is rolled back at once, mid-step: a bad canary costs as few
  requests as the evidence allows.
- WAIT: either track answered fewer than `min_requests` so far (no verdict from a
  handful of requests). The step goes on; after `max_waits` more intervals past its
  length without enough requests the canary is rolled back: it is never promoted
  without evidence.
- PASS: enough requests on both tracks and within the thresholds. A step that passes
  once it has lasted `step_seconds` moves to the next weight; the last one promotes.

Prometheus down (unreachable, an error, an answer that is not a vector) is fail-safe: the
canary is rolled back, since nothing can tell that it is good.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from .prometheus import Prometheus, PrometheusUnavailable

STABLE, CANARY = "stable", "canary"
# What a service answered on its routes: the platform's own endpoints left out, as the
# recording rules do (helm/agora/monitoring/rules/recording.yaml).
ROUTES = 'route!~"/metrics|/healthz|/readyz"'


@dataclass(frozen=True)
class Thresholds:
    min_requests: int = 100
    max_error_ratio_increase: float = 0.01
    max_p99_ratio: float = 1.5
    p99_slack_ms: float = 25.0


@dataclass(frozen=True)
class Plan:
    service: str
    steps: tuple[int, ...] = (10, 25, 50)
    step_seconds: float = 60.0
    interval_seconds: float = 10.0
    max_waits: int = 3
    thresholds: Thresholds = field(default_factory=Thresholds)

    @classmethod
    def from_values(cls, service: str, analysis: Mapping[str, Any]) -> Plan:
        """From `canary.analysis` of values.yaml (camelCase keys; missing ones default)."""
        defaults = Thresholds()
        thresholds = Thresholds(
            min_requests=int(analysis.get("minRequests", defaults.min_requests)),
            max_error_ratio_increase=float(
                analysis.get("maxErrorRatioIncrease", defaults.max_error_ratio_increase)
            ),
            max_p99_ratio=float(analysis.get("maxP99Ratio", defaults.max_p99_ratio)),
            p99_slack_ms=float(analysis.get("p99SlackMs", defaults.p99_slack_ms)),
        )
        plan = cls(
            service=service,
            steps=tuple(int(step) for step in analysis.get("steps", cls.steps)),
            step_seconds=float(analysis.get("stepSeconds", cls.step_seconds)),
            interval_seconds=float(analysis.get("intervalSeconds", cls.interval_seconds)),
            max_waits=int(analysis.get("maxWaits", cls.max_waits)),
            thresholds=thresholds,
        )
        if not plan.steps or any(not 0 < step <= 100 for step in plan.steps):
            raise ValueError(f"canary.analysis.steps must be weights from 1 to 100: {plan.steps}")
        if plan.interval_seconds <= 0 or plan.step_seconds < plan.interval_seconds:
            raise ValueError("canary.analysis: 0 < intervalSeconds <= stepSeconds")
        return plan


@dataclass(frozen=True)
class TrackStats:
    """What one track answered over a window."""

    requests: float
    errors: float
    p99: float | None  # seconds; None without requests

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str


def judge(tracks: Mapping[str, TrackStats], thresholds: Thresholds) -> Judgement:
    """The canary against stable over one window."""
    none = TrackStats(0, 0, None)
    stable, canary = tracks.get(STABLE, none), tracks.get(CANARY, none)
    counts = f"canary {canary.requests:.0f} requests, stable {stable.requests:.0f}"
    if min(stable.requests, canary.requests) < thresholds.min_requests:
        return Judgement(
            Verdict.WAIT, f"too few requests ({counts}; {thresholds.min_requests} needed)"
        )
    increase = canary.error_ratio - stable.error_ratio
    errors = f"5xx ratio canary {canary.error_ratio:.2%}, stable {stable.error_ratio:.2%}"
    if increase > thresholds.max_error_ratio_increase:
        return Judgement(
            Verdict.FAIL,
            f"{errors}: {increase:+.2%} is over "
            f"{thresholds.max_error_ratio_increase:.2%} ({counts})",
        )
    if canary.p99 is not None and stable.p99 is not None:
        allowed = stable.p99 * thresholds.max_p99_ratio + thresholds.p99_slack_ms / 1000
        latency = f"p99 canary {canary.p99 * 1000:.1f} ms, stable {stable.p99 * 1000:.1f} ms"
        if canary.p99 > allowed:
            return Judgement(
                Verdict.FAIL, f"{latency}: over the {allowed * 1000:.1f} ms allowed ({counts})"
            )
    else:
        latency = "p99 unknown"
    return Judgement(Verdict.PASS, f"{errors}; {latency} ({counts})")


# ---------------------------------------------------------------- Prometheus


def queries(service: str, window_seconds: float) -> dict[str, str]:
    """The three questions of one judgement, each answered per track."""
    window = f"{max(1, round(window_seconds))}s"
    selector = f'service="{service}", {ROUTES}'
    return {
        "requests": f"sum by (track) (increase(http_requests_total{{{selector}}}[{window}]))",
        "errors": (
            f'sum by (track) (increase(http_requests_total{{{selector}, status=~"5.."}}[{window}]))'
        ),
        "p99": (
            "histogram_quantile(0.99, sum by (track, le) "
            f"(increase(http_request_duration_seconds_bucket{{{selector}}}[{window}])))"
        ),
    }


def by_track(answer: Mapping[str, Any]) -> dict[str, float]:
    """A Prometheus vector answer as {track: value}; NaN (no requests) left out."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if answer.get("status") != "success" or not isinstance(data, Mapping):
        raise PrometheusUnavailable(f"unexpected answer: {str(answer)[:200]}")
    if data.get("resultType") != "vector":
        raise PrometheusUnavailable(f"expected a vector, got {data.get('resultType')}")
    values = {}
    for sample in data.get("result", []):
        value = float(sample["value"][1])
        if value == value:  # not NaN
            values[sample["metric"].get("track", STABLE)] = value
    return values


async def observe(
    prometheus: Prometheus, service: str, window_seconds: float
) -> dict[str, TrackStats]:
    answers = {
        name: by_track(await prometheus.query(query))
        for name, query in queries(service, window_seconds).items()
    }
    tracks = set(answers["requests"]) | set(answers["errors"])
    return {
        track: TrackStats(
            requests=answers["requests"].get(track, 0.0),
            errors=answers["errors"].get(track, 0.0),
            p99=answers["p99"].get(track),
        )
        for track in tracks
    }


# ---------------------------------------------------------------- the steps


class Traffic(Protocol):
    """Where the canary's share of traffic is set: devstack's nginx, an Ingress."""

    async def set_weight(self, weight: int) -> None: ...

    async def promote(self) -> None: ...

    async def rollback(self) -> None: ...


class Decision(enum.Enum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reason: str
    seconds: float  # from the first step to the decision (promoting or rolling back after)


async def analyse(
    plan: Plan,
    prometheus: Prometheus,
    traffic: Traffic,
    *,
    report: Callable[[str], None] = print,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Step through the plan; promote or roll back. Never leaves the canary half-way:
    an error of `traffic` or a cancellation rolls it back before passing on."""
    started = clock()

    async def finish(decision: Decision, reason: str) -> Outcome:
        outcome = Outcome(decision, reason, clock() - started)
        report(f"{plan.service}: {decision.value} after {outcome.seconds:.0f} s: {reason}")
        await (traffic.promote() if decision is Decision.PROMOTED else traffic.rollback())
        return outcome

    try:
        for number, weight in enumerate(plan.steps, 1):
            await traffic.set_weight(weight)
            step_started = clock()
            report(f"{plan.service}: step {number}/{len(plan.steps)}: weight {weight} %")
            deadline = plan.step_seconds + plan.max_waits * plan.interval_seconds
            while True:
                await sleep(plan.interval_seconds)
                elapsed = clock() - step_started
                try:
                    tracks = await observe(prometheus, plan.service, elapsed)
                except PrometheusUnavailable as error:
                    return await finish(Decision.ROLLED_BACK, f"Prometheus unavailable: {error}")
                judgement = judge(tracks, plan.thresholds)
                verdict, reason = judgement.verdict.value, judgement.reason
                report(f"{plan.service}:   {elapsed:.0f} s at {weight} %: {verdict}: {reason}")
                if judgement.verdict is Verdict.FAIL:
                    return await finish(Decision.ROLLED_BACK, judgement.reason)
                if judgement.verdict is Verdict.PASS and elapsed >= plan.step_seconds:
                    break
                if judgement.verdict is Verdict.WAIT and elapsed >= deadline:
                    return await finish(
                        Decision.ROLLED_BACK, f"no verdict at {weight} %: {judgement.reason}"
                    )
        return await finish(
            Decision.PROMOTED, f"every step passed ({', '.join(map(str, plan.steps))} %)"
        )
    except BaseException:
        # A failure to set the weight, a kill: back to stable, then tell.
        await asyncio.shield(traffic.rollback())
        raise


async def run(plan: Plan, prometheus_url: str, traffic: Traffic, **kwargs: Any) -> Outcome:
    async with aiohttp.ClientSession() as session:
        return await analyse(plan, Prometheus(prometheus_url, session), traffic, **kwargs)

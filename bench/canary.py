"""Canaries: what fault injection costs a request (off, and on at a rate that never
fires), and on the bench stack the analysis itself: the time from its start to its
decision for a healthy canary and for one failing 20 % of requests, and the failed
requests the bad one cost at each weight, under a steady load through the ingress."""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import threading
import time
from collections import Counter

import httpx
from aiohttp.test_utils import make_mocked_request

from devstack import rollout
from devstack.layout import Layout
from services.kit.keys import ACCESS_LOG

from . import kit_app
from .common import BenchEnv
from .kit import _time

SERVICE = "calc"
PATH = "/api/v1/calc/sum"
BODY = {"numbers": [1, 2, 3]}
ROUNDS, REQUESTS = 5, 5_000
# The bench's analysis: the chart's defaults judge every 30 s over 2-minute steps; these
# are shorter so that the run takes minutes, with the same logic.
PLAN = {"stepSeconds": 20, "intervalSeconds": 5, "minRequests": 50, "maxWaits": 2}
HEALTHY_STEPS = [10, 25, 50]
BAD_WEIGHTS = [5, 10, 25, 50]
LOAD_THREADS = 2


def run(env: BenchEnv) -> str:
    micro = asyncio.run(fault_injection_microseconds())
    layout = Layout.from_env()
    healthy = analysed(env, layout, {}, HEALTHY_STEPS)
    bad = {
        weight: analysed(env, layout, {"FAULT_ERROR_RATE": "0.2"}, [weight])
        for weight in BAD_WEIGHTS
    }
    off, again, on = micro["off"], micro["off, again"], micro["on, never firing"]
    lines = [
        "## Canary: fault injection, time to a decision, what a bad canary costs",
        "",
        f"Fault injection in-process (aiohttp's request handling, no network; median of {ROUNDS} x "
        f"{REQUESTS:,} requests of bench/kit_app.py): off {off:.2f} us per request, off again "
        f"{again:.2f} us (the noise floor: {abs(again - off):.2f}); on, at FAULT_ERROR_RATE=1e-9 "
        f"(the wrapper runs, never fails) {on:.2f} us (+{on - off:.2f}). Off, the handlers are "
        "not wrapped at all (`Faults.wrap` returns the handler itself), so the only cost is at "
        "start.",
        "",
        f"The analysis on the bench stack, `devstack canary-analyze {SERVICE}` with stepSeconds "
        f"{PLAN['stepSeconds']}, intervalSeconds {PLAN['intervalSeconds']}, minRequests "
        f"{PLAN['minRequests']}, under {LOAD_THREADS} clients sending POST {PATH} back to back "
        'through the ingress. "Decided": from the analysis\' start to its verdict; "done": '
        "until the rollback or promotion finished (devstack stops the canary's replicas "
        "gracefully, or restarts stable's one by one).",
        "",
        "| canary | weight(s) % | decided after s | done after s | requests | to the canary "
        "| failed | failed per 1,000 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        row("healthy", HEALTHY_STEPS, healthy),
    ]
    lines += [row("FAULT_ERROR_RATE=0.2", [weight], result) for weight, result in bad.items()]
    lines += [
        "",
        "A bad canary is rolled back at the first judgement that has `minRequests` on both "
        "tracks: the failures it costs are about weight x load x (time to that judgement + "
        "the rollback's reload) x 20 %, so a smaller first weight costs fewer failed requests "
        "but needs longer to gather the requests of a verdict.",
    ]
    return "\n".join(lines)


def row(name: str, weights: list[int], result: dict) -> str:
    answers: Counter = result["answers"]
    total = sum(answers.values())
    failures = Counter()
    for (track, status), n in answers.items():
        if status != 200:
            failures[f"{status or 'no answer'} from {track or 'stable'}"] += n
    failed = sum(failures.values())
    to_canary = sum(n for (track, _), n in answers.items() if track == "canary")
    which = ", ".join(f"{n} x {what}" for what, n in failures.most_common())
    return (
        f"| {name} ({result['decision']}) | {', '.join(map(str, weights))} | "
        f"{result['decided']:.0f} | {result['done']:.0f} | {total:,} | {to_canary:,} | "
        f"{failed:,}{f' ({which})' if which else ''} | {failed / total * 1000:.1f} |"
    )


class Load(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.stopped = url, Counter(), threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stopped.is_set():
                try:
                    answer = client.post(PATH, json=BODY)
                    self.answers[(answer.headers.get("X-Agora-Track"), answer.status_code)] += 1
                except httpx.HTTPError:
                    self.answers[("error", 0)] += 1


def analysed(env: BenchEnv, layout: Layout, canary_env: dict[str, str], steps: list[int]) -> dict:
    rollout.start(layout, SERVICE, env=canary_env, weight=0, version="bench")
    loads = [Load(env.agora_url) for _ in range(LOAD_THREADS)]
    for load in loads:
        load.start()
    started = time.monotonic()
    try:
        outcome = rollout.analyze(layout, SERVICE, {**PLAN, "steps": steps})
        done = time.monotonic() - started
    finally:
        for load in loads:
            load.stopped.set()
            load.join()
    answers: Counter = sum((load.answers for load in loads), Counter())
    return {
        "decision": outcome.decision.value,
        "decided": outcome.seconds,
        "done": done,
        "answers": answers,
    }


async def fault_injection_microseconds() -> dict[str, float]:
    apps = {
        "off": kit_app.create_app(kit_app.bench_settings(access_log_sample=0.0)),
        "off, again": kit_app.create_app(kit_app.bench_settings(access_log_sample=0.0)),
        "on, never firing": kit_app.create_app(
            kit_app.bench_settings(access_log_sample=0.0, fault_error_rate=1e-9)
        ),
    }
    for app in apps.values():
        app[ACCESS_LOG].fd = os.open(os.devnull, os.O_WRONLY)
        app.freeze()
        await app.startup()
    requests = {
        name: [make_mocked_request("GET", "/bench/kit/1", app=app) for _ in range(REQUESTS)]
        for name, app in apps.items()
    }
    gc.collect()
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name, app in apps.items():
            timings[name].append(await _time(app, requests[name]))
    for app in apps.values():
        await app.cleanup()
    return {name: statistics.median(values) for name, values in timings.items()}


if __name__ == "__main__":  # the in-process part alone: python -m bench.canary
    print(asyncio.run(fault_injection_microseconds()))

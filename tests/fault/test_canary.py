"""Canaries and A/B tests on the test stack, through its ingress (docs/canary.md): the
weight's share, the header beating it, the analysis promoting a healthy canary and rolling
back one that fails 20 % of requests while `X-Canary: never` traffic never fails, and A/B
variants sticky per user. calc carries them: two stable replicas, no state."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from devstack import rollout
from devstack.topology import REPO
from tests.conftest import prometheus_query

SERVICE = "calc"
PATH = "/api/v1/calc/sum"
BODY = {"numbers": [1, 2, 3]}
TRACK = "X-Agora-Track"  # which track devstack's ingress sent a request to
# The analysis, quick enough for a test: two steps of 12 s, judged every 4 s, on at
# least 30 requests a track.
QUICK = ["--steps", "20,50", "--step-seconds", "12", "--interval", "4", "--min-requests", "30"]


@pytest.fixture
def agora(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.layout.ingress_url, timeout=30) as client:
        yield client


@pytest.fixture
def canary(stack):
    """Starts canaries of calc with the given settings; none is left afterwards."""

    def start(weight: int, **kwargs) -> None:
        rollout.start(stack.layout, SERVICE, weight=weight, **kwargs)

    yield start
    rollout.rollback(stack.layout, SERVICE)


def tracks(client: httpx.Client, count: int, headers: dict[str, str] | None = None) -> Counter:
    seen: Counter = Counter()
    for _ in range(count):
        answer = client.post(PATH, json=BODY, headers=headers)
        assert answer.status_code == 200, answer.text
        seen[answer.headers[TRACK]] += 1
    return seen


class Traffic(threading.Thread):
    """Requests at a steady pace until stopped, counted by track and status."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, pause: float = 0.01):
        super().__init__(daemon=True)
        self.url, self.headers, self.pause = url, headers or {}, pause
        self.answers: Counter = Counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        # A new connection per request: a promotion or rollback reloads nginx, which closes
        # its idle keep-alive connections, and a request sent on one as it closes is lost
        # before nginx reads it (a ReadError; clients retry those). What is measured here
        # is what the split does to requests, not that race of keep-alive.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.url, timeout=10, limits=no_keepalive) as client:
            while not self.stopped.is_set():
                try:
                    answer = client.post(PATH, json=BODY, headers=self.headers)
                    self.answers[(answer.headers.get(TRACK), answer.status_code)] += 1
                except httpx.HTTPError as error:
                    self.answers[("error", type(error).__name__)] += 1
                time.sleep(self.pause)

    def stop(self) -> Counter:
        self.stopped.set()
        self.join(timeout=30)
        return self.answers


def analyse(stack) -> subprocess.CompletedProcess[str]:
    """`make canary-analyze`'s command, on the test stack."""
    return subprocess.run(
        [sys.executable, "-m", "devstack", "canary-analyze", SERVICE, *QUICK],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# ---------------------------------------------------------------- the split


def test_weight_20_sends_about_a_fifth_of_the_requests(stack, agora, canary) -> None:
    canary(20, env={"ACCESS_LOG_SAMPLE": "0.5"}, version="weight-test")
    requests = 2000
    seen = tracks(agora, requests)
    # binomial(2000, 0.2): mean 400, standard deviation 17.9; 5 of them either side
    bound = 5 * math.sqrt(requests * 0.2 * 0.8)
    assert abs(seen["canary"] - 400) < bound, seen
    assert seen["canary"] + seen["stable"] == requests


def test_the_header_beats_the_weight(stack, agora, canary) -> None:
    canary(50, env={"ACCESS_LOG_SAMPLE": "0.5"})
    assert tracks(agora, 200, {"X-Canary": "always"}) == Counter(canary=200)
    assert tracks(agora, 200, {"X-Canary": "never"}) == Counter(stable=200)
    rollout.set_weight(stack.layout, SERVICE, 100)
    assert tracks(agora, 100, {"X-Canary": "never"}) == Counter(stable=100)
    rollout.set_weight(stack.layout, SERVICE, 0)
    assert tracks(agora, 100, {"X-Canary": "always"}) == Counter(canary=100)
    assert tracks(agora, 100) == Counter(stable=100)


def test_the_cookie_beats_the_weight(stack, agora, canary) -> None:
    canary(0, env={"ACCESS_LOG_SAMPLE": "0.5"}, cookie="beta")
    agora.cookies.set("beta", "always")
    assert tracks(agora, 100) == Counter(canary=100)
    assert tracks(agora, 50, {"X-Canary": "never"}) == Counter(stable=50)  # the header first
    agora.cookies.clear()


# ---------------------------------------------------------------- the analysis


def test_a_healthy_canary_is_promoted(stack, canary) -> None:
    canary(10, env={"ACCESS_LOG_SAMPLE": "0.5"}, version="healthy")
    traffic = Traffic(stack.layout.ingress_url)
    traffic.start()
    try:
        result = analyse(stack)
    finally:
        answers = traffic.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "promoted" in result.stdout
    assert not [k for k in answers if k[1] != 200], answers
    stable = [
        r
        for r in stack.layout.replicas(rollout.services_of(stack.layout))
        if r.workload.name == SERVICE
    ]
    assert {r.track for r in stable} == {"stable"}  # the canary is gone
    assert all(r.workload.env["ACCESS_LOG_SAMPLE"] == "0.5" for r in stable)  # its settings stayed
    with httpx.Client(base_url=stack.layout.ingress_url) as client:
        assert TRACK not in client.post(PATH, json=BODY).headers


def test_a_canary_failing_a_fifth_is_rolled_back_and_never_traffic_never_fails(
    stack, canary
) -> None:
    canary(10, env={"FAULT_ERROR_RATE": "0.2"}, version="bad")
    anyone = Traffic(stack.layout.ingress_url)
    never = Traffic(stack.layout.ingress_url, {"X-Canary": "never"}, pause=0.02)
    anyone.start()
    never.start()
    started = time.monotonic()
    try:
        result = analyse(stack)
        elapsed = time.monotonic() - started
    finally:
        time.sleep(2)  # and a little after the rollback
        answers, protected = anyone.stop(), never.stop()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back" in result.stdout and "5xx ratio" in result.stdout
    # within the first step: 12 s and its waits, plus the rollback itself
    assert "step 2/2" not in result.stdout, result.stdout
    assert elapsed < 12 + 2 * 4 + 60
    assert answers[("canary", 500)] > 0  # it did fail, until rolled back
    assert sum(protected.values()) > 100
    # stable, or (after the rollback) no split at all: never the canary, never a failure
    assert set(protected) <= {("stable", 200), (None, 200)}, protected
    with httpx.Client(base_url=stack.layout.ingress_url) as client:
        answer = client.post(PATH, json=BODY, headers={"X-Canary": "always"})
        assert answer.status_code == 200 and TRACK not in answer.headers  # no canary routes


# ---------------------------------------------------------------- A/B


def test_ab_variants_are_sticky_per_user(stack, prometheus: httpx.Client) -> None:
    """users' list, 2 a page in variant B (the canary's PAGE_SIZE) and 20 in A; users,
    not calc, so that calc's replicas (test_monitoring's) never get a variant label."""
    rollout.start(stack.layout, "users", env={"PAGE_SIZE": "2"}, weight=50, ab=True)
    try:
        variants: dict[int, set[tuple[str, str, int]]] = {}
        for user in range(100):
            with httpx.Client(base_url=stack.layout.ingress_url, timeout=10) as client:
                seen = set()
                for _ in range(5):
                    answer = client.get("/api/v1/users")
                    assert answer.status_code == 200, answer.text
                    page = len(answer.json()["items"])
                    seen.add((answer.headers["X-Variant"], answer.headers[TRACK], page))
                assert "agora_ab" in client.cookies
                variants[user] = seen
        assert all(len(seen) == 1 for seen in variants.values()), variants
        counts = Counter(next(iter(seen))[:2] for seen in variants.values())
        assert set(counts) == {("a", "stable"), ("b", "canary")}
        # binomial(100, 0.5): 5 standard deviations (25) either side of 50
        assert 25 < counts[("b", "canary")] < 75
        pages = {variant: page for seen in variants.values() for variant, _, page in seen}
        assert pages["b"] == 2 and pages["a"] > 2  # what the variants differ in
        # a conversion metric is compared per variant: the variant labels the series
        deadline = time.monotonic() + 20
        found: set[str] = set()
        while time.monotonic() < deadline and found != {"a", "b"}:
            result = prometheus_query(
                prometheus,
                'sum by (variant) (http_requests_total{service="users", route="/api/v1/users"})',
            )
            found = {r["metric"].get("variant", "") for r in result} - {""}
            time.sleep(1)
        assert found == {"a", "b"}
    finally:
        rollout.rollback(stack.layout, "users")

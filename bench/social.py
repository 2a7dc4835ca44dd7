"""Social: timelines read and compose through the ingress, side by side with catalog's
GET of a product (the anchor); compose latency for an author with 10 followers and one
with 10,000 at a steady rate (fan-out is off the request path, so the two should be
alike), and the fan-out lag from the compose's answer to the post being in the home
timeline of the author's last follower (the last one paged through).

Followers get tokens signed with the bench stack's own key (<AGORA_RUN_DIR>/auth) rather
than 10,010 registrations and logins (argon2id, ~30 ms each): only the follow matters.
bench/values.yaml raises FANOUT_MAX_FOLLOWERS to 20,000 so that 10,000 are fanned out."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from services.kit.auth import TokenSigner, load_private_key

from .common import BenchEnv, interleaved, table, wrk

SECONDS = 5
ROUNDS = 3
CONNECTIONS = 16
SMALL, LARGE = 10, 10_000
STEADY_RATE = 4.0  # composes per second, per author, in the latency runs
STEADY_POSTS = 40  # per author per round
POLL = 0.01  # seconds between reads of the last follower's home
PASSWORD = "bench password 1"

WITH_TOKEN = 'wrk.headers["Authorization"] = "Bearer %(token)s"\n'
COMPOSE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = '{"text": "a post of the compose bench #bench"}'
"""


def _account(client: httpx.Client, name: str) -> tuple[int, str]:
    user = client.post("/api/v1/users", json={"name": name, "username": name, "password": PASSWORD})
    user.raise_for_status()
    login = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    login.raise_for_status()
    return user.json()["id"], login.json()["access_token"]


def _follow_all(client: httpx.Client, tokens: list[str], followee: int) -> None:
    def follow(token: str) -> None:
        resp = client.put(
            f"/api/v1/graph/following/{followee}", headers={"Authorization": f"Bearer {token}"}
        )
        resp.raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(follow, tokens))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Steady:
    """Composes at STEADY_RATE, each timed, and the time until the post is in one
    follower's home timeline (polled every POLL s, in a thread of its own per post)."""

    def __init__(self, client: httpx.Client, token: str, watcher: str) -> None:
        self.client, self.token, self.watcher = client, token, watcher
        self.compose_ms: list[float] = []
        self.lag_ms: list[float] = []
        self._lock = threading.Lock()

    def _watch(self, post_id: int, since: float) -> None:
        headers = {"Authorization": f"Bearer {self.watcher}"}
        deadline = since + 60
        while time.monotonic() < deadline:
            page = self.client.get("/api/v1/timelines/home?limit=5", headers=headers).json()
            if any(post["id"] == post_id for post in page["items"]):
                with self._lock:
                    self.lag_ms.append((time.monotonic() - since) * 1000)
                return
            time.sleep(POLL)

    def round(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        watchers = []
        start = time.monotonic()
        for i in range(STEADY_POSTS):
            time.sleep(max(0.0, start + i / STEADY_RATE - time.monotonic()))
            began = time.monotonic()
            resp = self.client.post("/api/v1/posts", json={"text": f"steady {i}"}, headers=headers)
            answered = time.monotonic()
            resp.raise_for_status()
            self.compose_ms.append((answered - began) * 1000)
            watcher = threading.Thread(target=self._watch, args=(resp.json()["id"], answered))
            watcher.start()
            watchers.append(watcher)
        for watcher in watchers:
            watcher.join()


def run(env: BenchEnv) -> str:
    url = env.agora_url
    key = load_private_key(Path(env.run_dir) / "auth" / "private.pem")
    signer = TokenSigner(key, issuer="agora-users", audience="agora", ttl=6 * 3600)
    tag = uuid.uuid4().hex[:6]
    base = 10**12 + int(time.time()) % 10**6 * 10**5
    with httpx.Client(base_url=url, timeout=30) as client:
        small_id, small_token = _account(client, f"small_{tag}")
        large_id, large_token = _account(client, f"large_{tag}")
        _, reader_token = _account(client, f"reader_{tag}")
        followers = [signer.issue(base + i, f"f{base + i}") for i in range(LARGE)]
        started = time.monotonic()
        # The first follower is the last one fan-out reaches (graph pages newest first).
        _follow_all(client, followers[:LARGE], large_id)
        _follow_all(client, followers[:SMALL], small_id)
        _follow_all(client, [reader_token], small_id)
        _follow_all(client, [reader_token], large_id)
        setup_s = time.monotonic() - started
        for i in range(30):  # the reader's home and the user timeline have pages to read
            for token in (small_token, large_token):
                client.post(
                    "/api/v1/posts",
                    json={"text": f"warm-up {i}"},
                    headers={"Authorization": f"Bearer {token}"},
                ).raise_for_status()
        time.sleep(2)
        reader_home = client.get(
            "/api/v1/timelines/home", headers={"Authorization": f"Bearer {reader_token}"}
        ).json()
        assert len(reader_home["items"]) == 20, reader_home

        values = {"token": reader_token}
        cases = [
            ("GET /api/v1/products/{id}", f"{url}/api/v1/products/1", None),
            ("GET home timeline (20 posts)", f"{url}/api/v1/timelines/home?limit=20", WITH_TOKEN),
            (
                "GET user timeline (20 posts)",
                f"{url}/api/v1/timelines/users/{small_id}?limit=20",
                None,
            ),
            ("POST /api/v1/posts (10 followers)", f"{url}/api/v1/posts", COMPOSE),
        ]
        compose_values = {"token": small_token}

        def case(name: str, target: str, script: str | None):
            lua = None
            if script:
                lua = script % (compose_values if script is COMPOSE else values)
            return lambda: wrk(name, target, seconds=SECONDS, connections=CONNECTIONS, lua=lua)

        results = interleaved([(n, case(n, t, s)) for n, t, s in cases], rounds=ROUNDS)
        time.sleep(5)  # the composes' fan-out done before the steady runs

        steady = {
            SMALL: Steady(client, small_token, followers[0]),
            LARGE: Steady(client, large_token, followers[0]),
        }
        for _ in range(ROUNDS):
            for count in (SMALL, LARGE):
                steady[count].round()
                time.sleep(1)

    def p(values: list[float], q: float) -> str:
        return f"{_quantile(values, q):.1f}"

    small, large = steady[SMALL], steady[LARGE]
    ratio50 = statistics.median(large.compose_ms) / statistics.median(small.compose_ms)
    ratio99 = _quantile(large.compose_ms, 0.99) / _quantile(small.compose_ms, 0.99)
    rows = [
        "| author | composes | compose p50 ms | compose p99 ms | lag p50 ms | lag p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for count, s in steady.items():
        rows.append(
            f"| {count:,} followers | {len(s.compose_ms)} | {p(s.compose_ms, 0.5)} | "
            f"{p(s.compose_ms, 0.99)} | {p(s.lag_ms, 0.5)} | {p(s.lag_ms, 0.99)} |"
        )
    return "\n".join(
        [
            "## Social: timelines and compose",
            "",
            f"wrk -t2 -c{CONNECTIONS}, {SECONDS} s per case, {ROUNDS} interleaved rounds, "
            "medians, through the ingress. The home timeline's reader follows both authors "
            "(hydration through the hot-post cache, its own posts merged at read); the user "
            "timeline is one indexed query at posts; composes by the 10-follower author.",
            "",
            table(results, baseline="GET /api/v1/products/{id}"),
            "",
            f"Steady compose at {STEADY_RATE:g}/s, {STEADY_POSTS} posts per author per round, "
            f"{ROUNDS} rounds interleaved (10 followers, then 10,000). Lag: from the compose's "
            "answer to the post in the home timeline of the author's first follower, the "
            f"last fan-out reaches (read every {POLL * 1000:.0f} ms). Compose p50 ratio "
            f"10,000 / 10 followers: **{ratio50:.2f}**, p99 ratio: **{ratio99:.2f}** "
            f"(target <= 1.2). Setup (10,011 follows through the ingress): {setup_s:.0f} s.",
            "",
            *rows,
        ]
    )

"""Engagement and search, side by side through the ingress: a home timeline read with
and without its counts (the cost of hydrating likes and comments), a like, a comment,
searches over 100,000 posts (a rare word, a common one, two words, a hashtag) against a
GET of a product (one indexed row: the baseline), and the index lag (a post's commit to
its being found by search) at a steady compose rate. BENCH_SEARCH_POSTS sets how many
posts (100,000)."""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import uuid

import httpx

from .common import BenchEnv, interleaved, table, wrk

POSTS = int(os.environ.get("BENCH_SEARCH_POSTS", "100000"))
SECONDS = 5
ROUNDS = 3
CONNECTIONS = 16
AUTHORS = 32
VOCABULARY = 2000  # uniform: each word is in about POSTS * 8 / VOCABULARY posts
TAGS = 100
LAG_POSTS = 60
LAG_RATE = 10  # posts per second while the lag is measured
PASSWORD = "bench password 1"

_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "zu", "da", "fe"]


def words() -> list[str]:
    rng = random.Random(7)
    out: set[str] = set()
    while len(out) < VOCABULARY:
        out.add("".join(rng.choice(_SYLLABLES) for _ in range(4)))  # 12**4 > VOCABULARY
    return sorted(out)


TOKENS = "local tokens = {%(tokens)s}\n"
COMPOSE = (
    TOKENS
    + """
local vocabulary = {%(words)s}
local limit = %(per_thread)d
local made = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  local text = {}
  for i = 1, 8 do text[i] = vocabulary[math.random(#vocabulary)] end
  if math.random(10) == 1 then text[9] = "tea" end
  text[#text + 1] = "#tag" .. math.random(%(tags)d)
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format(nil, nil, nil, '{"text": "' .. table.concat(text, " ") .. '"}')
end
function response(status)
  made = made + 1
  if made >= limit then wrk.thread:stop() end
end
"""
)
LIKE = (
    TOKENS
    + """
local posts = {%(posts)s}
wrk.method = "PUT"
function request()
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format(nil, "/api/v1/likes/" .. posts[math.random(#posts)])
end
"""
)
COMMENT = (
    TOKENS
    + """
local posts = {%(posts)s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  local body = '{"post_id": ' .. posts[math.random(#posts)] .. ', "text": "a bench comment"}'
  return wrk.format(nil, "/api/v1/comments", nil, body)
end
"""
)
HOME = """wrk.headers["Authorization"] = "Bearer %(token)s"\n"""
SEARCH = """
local queries = {%(queries)s}
function request()
  return wrk.format(nil, "/api/v1/search/posts?q=" .. queries[math.random(#queries)])
end
"""


def _accounts(client: httpx.Client) -> list[tuple[int, str]]:
    members = []
    for _ in range(AUTHORS):
        name = f"sb_{uuid.uuid4().hex[:10]}"
        client.post(
            "/api/v1/users", json={"name": "Bench", "username": name, "password": PASSWORD}
        ).raise_for_status()
        login = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        login.raise_for_status()
        me = client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
        )
        members.append((me.json()["id"], login.json()["access_token"]))
    return members


def _lua_list(values: list) -> str:
    return ", ".join(f'"{v}"' for v in values)


def _wait_found(client: httpx.Client, q: str, patience: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < patience:
        if client.get("/api/v1/search/posts", params={"q": q}).json().get("items"):
            return time.monotonic() - started
        time.sleep(0.005)
    raise RuntimeError(f"{q!r} not found within {patience} s")


def load(env: BenchEnv, tokens: list[str], vocabulary: list[str]) -> float:
    """POSTS posts through posts' API, then until search has indexed the last."""
    started = time.monotonic()
    threads = 2
    composed = 0
    # Runs of 20 s until POSTS are in: wrk's thread:stop() ends a thread's requests, but
    # wrk itself sleeps out its whole -d, so one run of an hour would wait an hour.
    while composed < POSTS:
        result = wrk(
            "compose (load)",
            f"{env.agora_url}/api/v1/posts",
            seconds=20,
            connections=16,
            threads=threads,
            lua=COMPOSE
            % {
                "tokens": _lua_list(tokens),
                "words": _lua_list(vocabulary),
                "per_thread": max(1, (POSTS - composed) // threads),
                "tags": TAGS,
            },
        )
        if result.errors or not result.requests:
            raise RuntimeError(f"loading: {result.requests} composes, {result.errors} failed")
        composed += result.requests
    with httpx.Client(base_url=env.agora_url, timeout=30) as client:
        marker = f"zz{uuid.uuid4().hex[:12]}"
        client.post(
            "/api/v1/posts",
            json={"text": marker},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        ).raise_for_status()
        _wait_found(client, marker, 1800)
    return time.monotonic() - started


def index_lag(env: BenchEnv, token: str) -> list[float]:
    """Posts composed at LAG_RATE per second, each with a word of its own; for each, the
    time from its 201 to the first search that finds it (polled every 5 ms)."""
    lags: list[float] = []
    lock = threading.Lock()

    def probe(word: str, composed: float) -> None:
        with httpx.Client(base_url=env.agora_url, timeout=30) as client:
            _wait_found(client, word, 60)
        with lock:
            lags.append(time.monotonic() - composed)

    threads = []
    with httpx.Client(base_url=env.agora_url, timeout=30) as client:
        for _ in range(LAG_POSTS):
            word = f"lag{uuid.uuid4().hex[:12]}"
            begin = time.monotonic()
            client.post(
                "/api/v1/posts",
                json={"text": f"lag probe {word}"},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            thread = threading.Thread(target=probe, args=(word, time.monotonic()))
            thread.start()
            threads.append(thread)
            time.sleep(max(0.0, 1 / LAG_RATE - (time.monotonic() - begin)))
    for thread in threads:
        thread.join()
    return sorted(lags)


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def run(env: BenchEnv) -> str:
    url = env.agora_url
    vocabulary = words()
    with httpx.Client(base_url=url, timeout=30) as client:
        members = _accounts(client)
    tokens = [token for _, token in members]
    load_seconds = load(env, tokens, vocabulary)
    with httpx.Client(base_url=url, timeout=30) as client:
        author_ids = ",".join(str(member_id) for member_id, _ in members)
        page = client.get("/api/v1/posts", params={"author_ids": author_ids, "limit": 800})
        post_ids = [post["id"] for post in page.json()["items"]]
    # as strings: post ids pass 2^53, past what a Lua number holds exactly
    values = {"tokens": _lua_list(tokens), "posts": ", ".join(f'"{i}"' for i in post_ids)}
    rare = [f"{word}" for word in random.Random(1).sample(vocabulary, 50)]
    pairs = [f"{a}+{b}" for a, b in zip(rare, reversed(rare), strict=True)]
    tags = [f"%23tag{n}" for n in range(1, TAGS + 1)]

    def search(name: str, queries: list[str]):
        lua = SEARCH % {"queries": _lua_list(queries)}
        return name, lambda: wrk(name, f"{url}/", seconds=SECONDS, connections=CONNECTIONS, lua=lua)

    def get(name: str, path: str):
        return name, lambda: wrk(name, f"{url}{path}", seconds=SECONDS, connections=CONNECTIONS)

    def scripted(name: str, script: str):
        lua = script % values
        return name, lambda: wrk(name, f"{url}/", seconds=SECONDS, connections=CONNECTIONS, lua=lua)

    def home(name: str, query: str):
        lua = HOME % {"token": tokens[0]}
        target = f"{url}/api/v1/timelines/home?limit=20{query}"
        return name, lambda: wrk(name, target, seconds=SECONDS, connections=CONNECTIONS, lua=lua)

    cases = [
        get("GET /api/v1/products/1 (baseline)", "/api/v1/products/1"),
        home("GET home timeline (20 posts), with counts", ""),
        home("GET home timeline (20 posts), ?counts=false", "&counts=false"),
        search("search a word (~320 of 100k posts)", rare),
        search("search two words", pairs),
        search("search a #hashtag (~1,000 posts)", tags),
        search("search a common word (~10,000 posts)", ["tea"]),
        scripted("PUT a like", LIKE),
        scripted("POST a comment", COMMENT),
    ]
    results = interleaved(cases, rounds=ROUNDS)
    lags = index_lag(env, tokens[0])
    rate = {r.name: r.requests_per_s for r in results}
    counts_cost = 1 - (
        rate["GET home timeline (20 posts), with counts"]
        / rate["GET home timeline (20 posts), ?counts=false"]
    )
    return "\n".join(
        [
            "## Engagement and search",
            "",
            f"{POSTS:,} posts by {AUTHORS} authors (8 words each of {VOCABULARY:,}, one "
            f"hashtag of {TAGS}, 'tea' in one in ten) composed through the ingress and indexed "
            f"by search in {load_seconds:.0f} s. wrk -t2 -c{CONNECTIONS}, {SECONDS} s per case, "
            f"{ROUNDS} interleaved rounds, medians; searches hydrate their 20 hits from posts. "
            f"Likes and comments rotate over {AUTHORS} users and {len(post_ids)} posts. "
            "engagement, search and posts: 2 replicas x 2 workers.",
            "",
            table(results, baseline="GET /api/v1/products/1 (baseline)"),
            "",
            f"The counts of a home timeline page (one batch call to engagement, cached "
            f"2 s per worker) cost {counts_cost * 100:.1f} % of its throughput.",
            "",
            f"Index lag, a post's 201 to the first search that finds it (polled every 5 ms), "
            f"{LAG_POSTS} posts at {LAG_RATE}/s: p50 {_quantile(lags, 0.5) * 1000:.0f} ms, "
            f"p99 {_quantile(lags, 0.99) * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms "
            f"(mean {statistics.mean(lags) * 1000:.0f} ms).",
        ]
    )

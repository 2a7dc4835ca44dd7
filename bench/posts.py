"""Posts: compose and reads of posts side by side with GET of a product (the anchor: one
indexed row from PostgreSQL through the same kit and ingress), in one interleaved run."""

from __future__ import annotations

import json
import uuid

import httpx

from .common import BenchEnv, interleaved, table, wrk

SECONDS = 5
ROUNDS = 3
CONNECTIONS = 16
BATCH = 20  # a page of a timeline: what timelines hydrate in one call
PASSWORD = "bench password 1"

ANCHOR = "GET /api/v1/products/{id} (anchor)"
COMPOSE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = '%(body)s'
"""


def _account(client: httpx.Client, name: str) -> tuple[int, str]:
    resp = client.post("/api/v1/users", json={"name": name, "username": name, "password": PASSWORD})
    resp.raise_for_status()
    login = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    login.raise_for_status()
    return resp.json()["id"], login.json()["access_token"]


def run(env: BenchEnv) -> str:
    url = env.agora_url
    suffix = uuid.uuid4().hex[:8]
    rich = f"Hi @friend_{suffix}, #bench https://example.com/a?b=1 and #posts"
    with httpx.Client(base_url=url, timeout=30) as client:
        _, token = _account(client, f"author_{suffix}")
        _account(client, f"friend_{suffix}")
        auth = {"Authorization": f"Bearer {token}"}
        posts = []
        for n in range(BATCH):
            resp = client.post("/api/v1/posts", json={"text": f"{rich} {n}"}, headers=auth)
            resp.raise_for_status()
            posts.append(resp.json())
        product = client.get("/api/v1/products", params={"limit": 1}).json()["items"][0]["id"]
    ids = ",".join(str(post["id"]) for post in posts)
    short = posts[0]["urls"][0]["short"]
    plain = COMPOSE % {"token": token, "body": json.dumps({"text": "a plain post, few words"})}
    mentions = COMPOSE % {"token": token, "body": json.dumps({"text": rich})}
    cases = [
        (ANCHOR, f"{url}/api/v1/products/{product}", None),
        ("GET /api/v1/posts/{id}", f"{url}/api/v1/posts/{posts[0]['id']}", None),
        (f"GET /api/v1/posts?ids= ({BATCH} posts)", f"{url}/api/v1/posts?ids={ids}", None),
        ("GET /s/{code} (302)", f"{url}{short}", None),
        ("POST /api/v1/posts, plain text", f"{url}/api/v1/posts", plain),
        ("POST /api/v1/posts, a mention, a URL, 2 hashtags", f"{url}/api/v1/posts", mentions),
    ]

    def case(name: str, target: str, lua: str | None):
        return lambda: wrk(name, target, seconds=SECONDS, connections=CONNECTIONS, lua=lua)

    results = interleaved([(name, case(name, t, lua)) for name, t, lua in cases], rounds=ROUNDS)
    rate = {r.name: r.requests_per_s for r in results}
    plain_rate = rate["POST /api/v1/posts, plain text"]
    rich_rate = rate["POST /api/v1/posts, a mention, a URL, 2 hashtags"]
    return "\n".join(
        [
            "## Posts: compose and reads, beside GET of a product",
            "",
            f"wrk -t2 -c{CONNECTIONS}, {SECONDS} s per case, {ROUNDS} interleaved rounds, "
            "medians, through the ingress; posts and catalog 2 replicas x 2 workers each. "
            "A compose commits the post, its short links and its post.created event in one "
            "transaction (the relay publishes it meanwhile); the one with a mention also "
            "asks users for the name (one HTTP call).",
            "",
            table(results, baseline=ANCHOR),
            "",
            f"Resolving a mention (a call to users) and shortening a URL cost "
            f"{(1 - rich_rate / plain_rate) * 100:.1f} % of a plain compose's throughput.",
        ]
    )

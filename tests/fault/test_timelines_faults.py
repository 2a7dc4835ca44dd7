"""Timelines under faults, through the ingress: a timelines replica SIGKILLed in the middle
of a fan-out to 2,000 followers (every follower gets every post exactly once), Redis
emptied (FLUSHALL) while posts arrive (timelines come back complete), and a big account
(above the test stack's FANOUT_MAX_FOLLOWERS, 2,000: tests/integration/values.yaml)
merged at read.

The 2,000 followers are given tokens signed with the stack's own key (devstack's
.run/.../auth/private.pem) rather than registered one by one: a registration hashes a
password (~30 ms), and nothing here is about accounts."""

from __future__ import annotations

import collections
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from services.kit.auth import TokenSigner, load_private_key
from tests.integration.orders_helpers import wait_for
from tests.integration.social_helpers import Account, new_account
from tests.integration.timelines_helpers import (
    compose,
    follow,
    home,
    home_ids,
    unfollow,
    wait_home,
)

# 2,000 follows take ~20 s on a quiet machine; on a shared one under heavy load minutes.
pytestmark = pytest.mark.timeout(900)

FOLLOWERS = 2000  # the test stack's FANOUT_MAX_FOLLOWERS: still fanned out
POSTS_STREAM, GROUP = "posts.events", "timelines"
REPLICAS = ("timelines-0", "timelines-1")
CLAIM_PATIENCE = 60.0  # a dead consumer's entries are claimed after CLAIM_IDLE_SECONDS (10)


@pytest.fixture(scope="module")
def store(stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.layout.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def crowd(agora, stack) -> tuple[Account, list[Account]]:
    """An author and FOLLOWERS followers of theirs (minted tokens, unregistered ids)."""
    key = load_private_key(Path(stack.layout.auth_dir) / "private.pem")
    signer = TokenSigner(key, issuer="agora-users", audience="agora", ttl=3600)
    author = new_account(agora, f"crowd_{uuid.uuid4().hex[:10]}")
    base = 10**12 + random.randrange(10**6) * 10**4
    followers = [
        Account(i, f"f{i}", signer.issue(i, f"f{i}")) for i in range(base, base + FOLLOWERS)
    ]

    def follow_patiently(follower: Account) -> None:
        # A follow is idempotent: on a loaded machine a 503/504 is tried again.
        for _ in range(5):
            resp = agora.put(f"/api/v1/graph/following/{author.id}", headers=follower.auth)
            if resp.status_code not in (502, 503, 504):
                break
        assert resp.status_code == 204, resp.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(follow_patiently, followers))
    assert agora.get(f"/api/v1/graph/{author.id}").json()["followers"] == FOLLOWERS
    return author, followers


def replica_of(stack, consumer: str) -> str | None:
    """The devstack replica whose worker is the consumer `<host>-<pid>`."""
    pid = consumer.rsplit("-", 1)[-1]
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return next((name for name in REPLICAS if stack.pid(name) in (parent, int(pid))), None)


def holding_replica(stack, store: redis.Redis) -> str | None:
    """A timelines replica that holds a posts.events entry unacknowledged: mid fan-out."""
    for entry in store.xpending_range(POSTS_STREAM, GROUP, min="-", max="+", count=100):
        if replica := replica_of(stack, entry["consumer"]):
            return replica
    return None


def posts_of_every_follower(agora, followers: list[Account], posted: list[int]) -> None:
    """Each follower's home holds every post in `posted` exactly once."""

    def check(follower: Account) -> None:
        wait_home(agora, follower, lambda ids: set(posted) <= set(ids), f"{follower.id}'s posts")
        counts = collections.Counter(home_ids(agora, follower))
        assert all(counts[post_id] == 1 for post_id in posted), follower.id

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(check, followers))


def test_a_replica_killed_mid_fan_out_loses_and_repeats_nothing(agora, stack, store, crowd):
    author, followers = crowd
    posted: list[int] = []
    composing = threading.Thread(
        target=lambda: posted.extend(
            compose(agora, author, f"to the crowd {i}")["id"] for i in range(20)
        )
    )
    composing.start()
    try:
        victim = wait_for(
            lambda: holding_replica(stack, store),
            patience=30,
            what="a fan-out in flight",
            every=0.005,
        )
        old_pid = stack.crash(victim)
    finally:
        composing.join()
    stack.wait_running(victim, other_than=old_pid)
    assert len(posted) == 20
    wait_for(
        lambda: store.xpending(POSTS_STREAM, GROUP)["pending"] == 0,
        patience=CLAIM_PATIENCE,
        what="the killed consumer's entries redone",
    )
    posts_of_every_follower(agora, followers, posted)


def test_a_big_account_is_merged_at_read_not_fanned_out(agora, store, crowd, unique):
    author, followers = crowd
    newcomer = new_account(agora, f"new_{unique}")
    follow(agora, newcomer, author.id)  # FOLLOWERS + 1: above the threshold
    try:
        post = compose(agora, author, "too many followers to fan out")["id"]
        sample = [newcomer, *random.sample(followers, 50)]
        for reader in sample:
            wait_home(agora, reader, lambda ids: post in ids, "the big account's post")
        # In the timelines only through the read: no follower's sorted set holds it.
        holding = [f.id for f in followers if store.zscore(f"timeline:home:{f.id}", post)]
        sampled = {reader.id for reader in sample}
        assert not holding, (len(holding), len(set(holding) & sampled))
        # The author's earlier posts, fanned out before, are not shown twice.
        ids = home_ids(agora, followers[0])
        assert len(ids) == len(set(ids))
    finally:
        unfollow(agora, newcomer, author.id)


def test_timelines_come_back_complete_after_redis_is_emptied(agora, store, unique):
    reader = new_account(agora, f"r_{unique}")
    authors = [new_account(agora, f"a{i}_{unique}") for i in range(2)]
    for author in authors:
        follow(agora, reader, author.id)
    posted: list[int] = []
    for i in range(30):
        if i == 15:
            store.flushall()  # timelines, hot posts, streams and their groups: all gone
        posted.append(compose(agora, authors[i % 2], f"post {i}")["id"])
        home_ids(agora, reader)  # reads go on throughout
        time.sleep(0.02)
    expected = sorted(posted, reverse=True)
    wait_home(agora, reader, lambda ids: ids == expected, "every post, in order, once")
    pages, cursor = [], {}
    while True:  # and it pages as before
        page = home(agora, reader, limit=7, **cursor)
        pages += [p["id"] for p in page["items"]]
        if page["next"] is None:
            break
        cursor = {"before": page["next"]}
    assert pages == expected

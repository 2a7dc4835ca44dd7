"""timelines with the real users, posts and graph apps in-process and a real Redis:
fan-out, backfill, removal, read-merge of your own and big accounts' posts, rebuilds,
redeliveries, hydration through the hot-post cache and pagination."""

from __future__ import annotations

import orjson
from prometheus_client import REGISTRY

from services.timelines import sources
from services.timelines.store import done_key, home_key
from tests.unit.conftest import until


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def in_home(social, reader, *post_ids: int) -> list[int]:
    return await until(lambda: _holding(social, reader, set(post_ids)), patience=15)


async def _holding(social, reader, wanted: set[int]) -> list[int] | None:
    ids = await social.home_ids(reader)
    return ids if wanted <= set(ids) else None


async def test_a_post_reaches_followers_and_its_author_at_once(social):
    ana, ana_auth = await social.account("ana")
    _, bob_auth = await social.account("bob")
    _, eve_auth = await social.account("eve")
    await social.follow(bob_auth, ana)
    post = await social.compose(ana_auth, "hello @bob #first")
    assert (await social.home_ids(ana_auth))[0] == post  # merged at read: no waiting
    await in_home(social, bob_auth, post)
    item = (await social.home(bob_auth))["items"][0]
    direct = await (await social.posts.get(f"/api/v1/posts/{post}")).json()
    assert item == direct and item["author"]["username"] == "ana"
    assert post not in await social.home_ids(eve_auth)  # not a follower
    assert sample("timeline_fanout_lag_seconds_count") >= 1  # its lag observed


async def test_fan_out_pages_through_followers(social, monkeypatch):
    monkeypatch.setattr(sources, "FOLLOWERS_PAGE", 2)
    ana, ana_auth = await social.account("ana")
    readers = [await social.account(f"reader{i}") for i in range(5)]
    for _, auth in readers:
        await social.follow(auth, ana)
    post = await social.compose(ana_auth, "to five followers, two a page")
    for _, auth in readers:
        await in_home(social, auth, post)


def handled(outcome: str) -> float:
    return sample(
        "stream_events_total", service="timelines", stream="posts.events", outcome=outcome
    )


async def redeliver(redis, fields, outcome: str) -> None:
    """Add an event to the stream again; until timelines has handled it with `outcome`."""
    before = handled(outcome)
    await redis.xadd("posts.events", fields)
    await until(lambda: handled(outcome) > before)


async def test_a_redelivered_event_changes_nothing(social, redis):
    ana, ana_auth = await social.account("ana")
    bob, bob_auth = await social.account("bob")
    await social.follow(bob_auth, ana)
    post = await social.compose(ana_auth, "once")
    await in_home(social, bob_auth, post)
    before = await redis.zrange(home_key(bob), 0, -1, withscores=True)
    (_, fields), *_ = [
        entry
        for entry in await redis.xrange("posts.events")
        if orjson.loads(entry[1][b"payload"])["post_id"] == post
    ]
    await redeliver(redis, fields, "duplicate")  # the same event again: skipped
    await redis.delete(done_key(post))  # and as if the first fan-out had died midway
    await redeliver(redis, fields, "processed")
    assert await redis.zrange(home_key(bob), 0, -1, withscores=True) == before
    assert (await social.home_ids(bob_auth)).count(post) == 1


async def test_follow_backfills_and_unfollow_removes(social):
    ana, ana_auth = await social.account("ana")
    _, bob_auth = await social.account("bob")
    earlier = [await social.compose(ana_auth, f"early {i}") for i in range(3)]
    await social.follow(bob_auth, ana)
    assert (await in_home(social, bob_auth, *earlier))[:3] == earlier[::-1]
    await social.unfollow(bob_auth, ana)
    await until(lambda: _lacking(social, bob_auth, set(earlier)), patience=15)


async def _lacking(social, reader, unwanted: set[int]) -> bool:
    return not unwanted & set(await social.home_ids(reader))


async def test_a_deleted_post_leaves_every_timeline(social, redis):
    ana, ana_auth = await social.account("ana")
    bob, bob_auth = await social.account("bob")
    await social.follow(bob_auth, ana)
    kept = await social.compose(ana_auth, "kept")
    gone = await social.compose(ana_auth, "gone")
    await in_home(social, bob_auth, kept, gone)  # and both are in the hot-post cache
    resp = await social.posts.delete(f"/api/v1/posts/{gone}", headers=ana_auth)
    assert resp.status == 204
    await until(lambda: _lacking(social, bob_auth, {gone}), patience=15)
    assert await redis.zscore(home_key(bob), gone) is None  # removed, not only hidden
    assert kept in await social.home_ids(bob_auth)


async def test_a_big_account_is_merged_at_read_not_fanned_out(make_social, redis):
    social = await make_social(fanout_max_followers=1)
    ana, ana_auth = await social.account("ana")
    followers = [await social.account(name) for name in ("bob", "cid")]
    for _, auth in followers:
        await social.follow(auth, ana)
    post = await social.compose(ana_auth, "to too many")
    for user_id, auth in followers:
        assert (await social.home_ids(auth))[0] == post  # at once: merged at read
        assert await redis.zscore(home_key(user_id), post) is None


async def test_a_lost_timeline_is_rebuilt_on_read(social, redis):
    ana, ana_auth = await social.account("ana")
    cid, cid_auth = await social.account("cid")
    bob, bob_auth = await social.account("bob")
    for followee in (ana, cid):
        await social.follow(bob_auth, followee)
    posted = [
        await social.compose(auth, f"p{i}") for i in range(3) for auth in (ana_auth, cid_auth)
    ]
    await in_home(social, bob_auth, *posted)
    rebuilds = sample("timeline_rebuilds_total")
    await redis.delete(home_key(bob))
    assert await social.home_ids(bob_auth) == sorted(posted, reverse=True)
    assert sample("timeline_rebuilds_total") == rebuilds + 1
    await social.home_ids(bob_auth)  # built now: not rebuilt again
    assert sample("timeline_rebuilds_total") == rebuilds + 1


async def test_pages_neither_overlap_nor_skip(social):
    ana, ana_auth = await social.account("ana")
    _, bob_auth = await social.account("bob")
    await social.follow(bob_auth, ana)
    posted = [await social.compose(ana_auth, f"p{i}") for i in range(7)]
    await in_home(social, bob_auth, *posted)
    seen, params = [], {"limit": 3}
    while True:
        page = await social.home(bob_auth, **params)
        seen += [post["id"] for post in page["items"]]
        await social.compose(ana_auth, "newer than every page")
        if page["next"] is None:
            break
        params = {"limit": 3, "before": page["next"]}
    assert seen == posted[::-1]


async def test_hydration_serves_hot_posts_from_the_cache(social):
    ana, ana_auth = await social.account("ana")
    _, bob_auth = await social.account("bob")
    await social.follow(bob_auth, ana)
    post = await social.compose(ana_auth, "hot")
    await in_home(social, bob_auth, post)
    hits = sample("timeline_post_cache_total", outcome="hit")
    await social.home(bob_auth)
    assert sample("timeline_post_cache_total", outcome="hit") == hits + 1


async def test_user_timeline_and_errors(social):
    ana, ana_auth = await social.account("ana")
    posted = [await social.compose(ana_auth, f"p{i}") for i in range(3)]
    resp = await social.timelines.get(f"/api/v1/timelines/users/{ana}", params={"limit": 2})
    page = await resp.json()
    assert [p["id"] for p in page["items"]] == posted[:0:-1] and page["next"] == str(posted[1])
    resp = await social.timelines.get("/api/v1/timelines/home")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await social.timelines.get("/api/v1/timelines/users/1", params={"before": "x"})
    assert resp.status == 400 and (await resp.json())["details"][0]["field"] == "before"

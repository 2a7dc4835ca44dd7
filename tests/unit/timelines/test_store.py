"""The Redis side of timelines against a real Redis: fan-out idempotent and capped, the
sentinel that tells a built timeline from a missing one, and follows applied in order."""

from __future__ import annotations

from services.timelines.store import Timelines, home_key

CAP = 5


async def test_fan_out_twice_adds_once_and_keeps_the_newest(redis):
    timelines = Timelines(redis, CAP)
    await timelines.build(1, [])
    for post_id in range(10, 20):
        await timelines.fan_out(post_id, [1, 2])
        await timelines.fan_out(post_id, [1, 2])  # a redelivery
    built, ids = await timelines.page(1, None, 100)
    assert built and ids == [19, 18, 17, 16, 15]
    built, ids = await timelines.page(2, None, 100)  # never built: fan-out kept its posts
    assert not built and ids[:5] == [19, 18, 17, 16, 15]


async def test_pages_below_the_cursor_do_not_overlap(redis):
    timelines = Timelines(redis, 100)
    await timelines.build(1, [5, 3, 9, 7, 1])
    _, first = await timelines.page(1, None, 2)
    _, second = await timelines.page(1, first[-1], 2)
    _, third = await timelines.page(1, second[-1], 2)
    assert (first, second, third) == ([9, 7], [5, 3], [1])


async def test_a_built_empty_timeline_is_not_missing(redis):
    timelines = Timelines(redis, CAP)
    assert await timelines.page(1, None, 20) == (False, [])
    await timelines.build(1, [])
    assert await timelines.page(1, None, 20) == (True, [])
    await redis.flushall()
    assert await timelines.page(1, None, 20) == (False, [])


async def test_build_adds_to_what_fan_out_put_there(redis):
    timelines = Timelines(redis, CAP)
    await timelines.fan_out(50, [1])  # fanned out while the rebuild read its snapshot
    await timelines.build(1, [10, 20])
    assert await timelines.page(1, None, 20) == (True, [50, 20, 10])


async def test_an_unfollow_processed_before_its_follow_wins(redis):
    timelines = Timelines(redis, CAP)
    await timelines.build(1, [])
    # follow at entry 100-0, unfollow at 100-1: the unfollow's consumer runs first
    assert await timelines.follow("100-1", 1, 2, "unfollow", [])
    assert not await timelines.follow("100-0", 1, 2, "follow", [7, 8])
    assert await timelines.page(1, None, 20) == (True, [])
    # a later follow applies, and its redelivery changes nothing
    assert await timelines.follow("101-0", 1, 2, "follow", [7, 8])
    assert await timelines.follow("101-0", 1, 2, "follow", [7, 8])
    assert await timelines.page(1, None, 20) == (True, [8, 7])
    assert await timelines.follow("102-0", 1, 2, "unfollow", [7, 8])
    assert await timelines.page(1, None, 20) == (True, [])


async def test_remove_everywhere_and_forget(redis):
    timelines = Timelines(redis, CAP)
    for user in (1, 2):
        await timelines.build(user, [10, 11, 12])
    await timelines.remove_everywhere(11, [1, 2, 3])
    assert await timelines.page(1, None, 20) == (True, [12, 10])
    await timelines.forget(2, [10, 12])
    assert await timelines.page(2, None, 20) == (True, [])
    assert not await redis.exists(home_key(3))
    assert await timelines.lowest(1) == 10


async def test_cached_posts_never_replace_a_tombstone(redis):
    timelines = Timelines(redis, CAP)
    await timelines.cache_posts({1: b'{"id":1}', 2: b'{"id":2}'}, 10)
    await timelines.tombstone(2)
    await timelines.tombstone(3)
    await timelines.cache_posts({3: b'{"id":3}'}, 10)  # fetched just before the delete
    assert await timelines.cached_posts([1, 2, 3, 4]) == [b'{"id":1}', b"", b"", None]

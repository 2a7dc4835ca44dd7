"""The consumer group against a real Redis: ack after processing, claims, retries."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from services.kit.streams import ConsumerOptions, InvalidEntry, StreamConsumer
from tests.conftest import free_port
from tests.unit.conftest import until

STREAM = "test.events"


class Recorder:
    """A handler that records each key once, like the notifications store does."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.fail_next = 0
        self.recorded = asyncio.Event()

    async def wait_for(self, key: str, patience: float = 10.0) -> None:
        async with asyncio.timeout(patience):
            while key not in self.seen:
                self.recorded.clear()
                await self.recorded.wait()

    async def __call__(self, entry_id: str, fields: dict[str, str]) -> bool:
        if fields.get("bad"):
            raise InvalidEntry("bad payload")
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database away")
        key = fields["key"]
        self.seen[key] = self.seen.get(key, 0) + 1
        self.recorded.set()
        return self.seen[key] == 1


def consumer(redis, handler, name, **options) -> StreamConsumer:
    return StreamConsumer(
        redis,
        service="test",
        stream=STREAM,
        group="g",
        handler=handler,
        name=name,
        options=ConsumerOptions(block=0.05, **options),
    )


def counted(outcome: str) -> float:
    labels = {"service": "test", "stream": STREAM, "outcome": outcome}
    return REGISTRY.get_sample_value("stream_events_total", labels) or 0.0


async def pending(redis) -> int:
    return (await redis.xpending(STREAM, "g"))["pending"]


async def test_entries_added_before_the_group_exists_are_delivered_and_acknowledged(redis):
    for key in "abc":
        await redis.xadd(STREAM, {"key": key})
    handler = Recorder()
    worker = consumer(redis, handler, "one")
    await worker.step()
    assert handler.seen == {"a": 1, "b": 1, "c": 1}
    assert await pending(redis) == 0


async def test_a_repeated_entry_is_a_duplicate_not_a_second_processing(redis):
    handler = Recorder()
    worker = consumer(redis, handler, "one")
    await worker.ensure_group()
    before = counted("duplicate")
    await redis.xadd(STREAM, {"key": "a"})
    await redis.xadd(STREAM, {"key": "a"})  # published twice: at least once
    await worker.step()
    assert handler.seen == {"a": 2}  # called twice, recorded once (the handler's job)
    assert counted("duplicate") == before + 1


async def test_entries_left_pending_by_a_dead_consumer_are_claimed(redis):
    dead = consumer(redis, Recorder(), "dead")
    await dead.ensure_group()
    await redis.xadd(STREAM, {"key": "a"})
    await redis.xadd(STREAM, {"key": "b"})
    # "dead" reads them and dies before acknowledging.
    await redis.xreadgroup("g", "dead", {STREAM: ">"}, count=10)
    assert await pending(redis) == 2

    handler = Recorder()
    survivor = consumer(redis, handler, "survivor", claim_idle=0.2)
    await survivor.step()
    assert handler.seen == {}  # not idle long enough yet: "dead" may still be working
    await asyncio.sleep(0.25)
    survivor._next_claim = 0
    before = REGISTRY.get_sample_value(
        "stream_redeliveries_total", {"service": "test", "stream": STREAM}
    )
    await survivor.step()
    assert handler.seen == {"a": 1, "b": 1}
    assert await pending(redis) == 0
    after = REGISTRY.get_sample_value(
        "stream_redeliveries_total", {"service": "test", "stream": STREAM}
    )
    assert after - before == 2


async def test_a_failed_entry_stays_pending_and_is_retried_first(redis):
    handler = Recorder()
    worker = consumer(redis, handler, "one")
    await worker.ensure_group()
    for key in "abc":
        await redis.xadd(STREAM, {"key": key})
    handler.fail_next = 1
    with pytest.raises(Exception, match="handler: ConnectionError"):
        await worker.step()
    assert handler.seen == {}
    assert await pending(redis) == 3  # nothing acknowledged that was not processed
    await worker.step()  # reads its own pending entries again first
    assert handler.seen == {"a": 1, "b": 1, "c": 1}
    assert await pending(redis) == 0


async def test_an_invalid_entry_goes_to_the_dead_letter_stream(redis):
    handler = Recorder()
    worker = consumer(redis, handler, "one")
    await worker.ensure_group()
    await redis.xadd(STREAM, {"bad": "yes"})
    await redis.xadd(STREAM, {"key": "a"})
    await worker.step()
    assert handler.seen == {"a": 1}
    assert await pending(redis) == 0
    dead = await redis.xrange(f"{STREAM}:dead")
    assert len(dead) == 1 and dead[0][1][b"error"] == b"bad payload"


async def test_lag_and_pending_are_measured(redis):
    worker = consumer(redis, Recorder(), "one")
    await worker.ensure_group()
    for key in "abcd":
        await redis.xadd(STREAM, {"key": key})
    await redis.xreadgroup("g", "other", {STREAM: ">"}, count=1)
    await worker.observe()
    labels = {"service": "test", "stream": STREAM, "group": "g"}
    assert REGISTRY.get_sample_value("stream_consumer_lag", labels) == 3
    assert REGISTRY.get_sample_value("stream_consumer_pending", labels) == 1


async def test_consumers_of_dead_processes_are_forgotten(redis):
    worker = consumer(redis, Recorder(), "one", forget_idle=0.1)
    await worker.ensure_group()
    await redis.xreadgroup("g", "gone", {STREAM: ">"}, count=1)  # a consumer, holding nothing
    await asyncio.sleep(0.15)
    await worker.forget_idle_consumers()
    names = [c["name"] for c in await redis.xinfo_consumers(STREAM, "g")]
    assert b"gone" not in names


async def test_run_waits_out_an_unreachable_redis_and_stops_when_asked():
    import redis.asyncio as aioredis

    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    worker = consumer(client, Recorder(), "one")
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    await asyncio.sleep(0.3)
    assert worker.last_error and worker.last_error.startswith("redis")
    stopping.set()
    await asyncio.wait_for(task, 6)
    await client.aclose()


async def test_an_entry_that_keeps_failing_is_dead_lettered_not_retried_forever(redis):
    async def broken(entry_id, fields):
        if fields["key"] == "poison":
            raise KeyError("a bug")
        return True

    worker = consumer(redis, broken, "one", max_failures=3)
    await worker.ensure_group()
    await redis.xadd(STREAM, {"key": "poison"})
    await redis.xadd(STREAM, {"key": "fine"})
    for _ in range(2):
        with pytest.raises(Exception, match="handler: KeyError"):
            await worker.step()
    assert await pending(redis) == 2
    await worker.step()  # the third failure: set aside, and the next entry flows
    assert await pending(redis) == 0
    [dead] = await redis.xrange(f"{STREAM}:dead")
    assert dead[1][b"key"] == b"poison" and b"KeyError" in dead[1][b"error"]


async def test_an_outage_is_waited_out_not_dead_lettered(redis):
    handler = Recorder()
    worker = consumer(redis, handler, "one", max_failures=2)
    await worker.ensure_group()
    await redis.xadd(STREAM, {"key": "a"})
    handler.fail_next = 5  # ConnectionError: the database is away
    for _ in range(5):
        with pytest.raises(Exception, match="handler: ConnectionError"):
            await worker.step()
    await worker.step()
    assert handler.seen == {"a": 1}
    assert await redis.xlen(f"{STREAM}:dead") == 0


async def test_a_deleted_group_is_made_again(redis):
    handler = Recorder()
    worker = consumer(redis, handler, "one")
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    await redis.xadd(STREAM, {"key": "a"})
    await handler.wait_for("a")
    await redis.delete(STREAM)  # Redis lost its data, say
    await redis.xadd(STREAM, {"key": "b"})
    await handler.wait_for("b")
    stopping.set()
    await task
    assert handler.seen == {"a": 1, "b": 1}


# ---------------------------------------------------------------- concurrency


class Slow:
    """A handler that takes `seconds` per entry and records how many ran at once."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds
        self.running = 0
        self.most = 0
        self.done: dict[str, int] = {}
        self.fail_once: set[str] = set()
        self.cancelled: list[str] = []

    async def __call__(self, entry_id: str, fields: dict[str, str]) -> bool:
        key = fields["key"]
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.seconds)
            if key in self.fail_once:
                self.fail_once.discard(key)
                raise ConnectionError("database away")
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.running -= 1
        self.done[key] = self.done.get(key, 0) + 1
        return self.done[key] == 1


async def run_until(worker, condition, patience: float = 10.0) -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    try:
        await until(condition, patience)
    finally:
        stopping.set()
        await task


async def test_with_concurrency_entries_are_handled_at_once_and_each_acknowledged(redis):
    handler = Slow(0.2)
    worker = consumer(redis, handler, "one", concurrency=5, batch=100)
    await worker.ensure_group()
    for index in range(12):
        await redis.xadd(STREAM, {"key": str(index)})
    await run_until(worker, lambda: len(handler.done) == 12)
    assert handler.most == 5  # never more than the concurrency, and that many at once
    assert set(handler.done.values()) == {1}
    assert await pending(redis) == 0


@pytest.mark.parametrize("slots", [4, 2], ids=["slots free", "every slot busy"])
async def test_a_long_handler_keeps_its_lease_past_claim_idle(redis, slots):
    """Also while every slot is busy, when the holder waits for one to free (claim_idle
    being shorter than the wait it would make otherwise)."""
    handler, other = Slow(1.2), Slow(0.0)
    holder = StreamConsumer(
        redis,
        service="test",
        stream=STREAM,
        group="g",
        handler=handler,
        name="holder",
        options=ConsumerOptions(block=1.0, concurrency=slots, claim_idle=0.3),  # the default
    )
    rival = consumer(redis, other, "rival", claim_idle=0.3)
    await holder.ensure_group()
    keys = ["long", "longer"]
    for key in keys:
        await redis.xadd(STREAM, {"key": key})
    stopping = asyncio.Event()
    holder_task = asyncio.create_task(holder.run(stopping))
    await until(lambda: handler.running == 2)  # the holder has them
    try:
        while not set(keys) <= set(handler.done):  # 1.2 s: 4 claim_idles
            await rival.claim_stale()  # claims whatever is idle past claim_idle, often
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await holder_task
    assert other.done == {}  # the rival claimed nothing: the holder renewed its lease
    assert await pending(redis) == 0


async def test_the_entries_of_a_consumer_that_died_mid_handling_are_claimed(redis):
    handler = Slow(5.0)
    doomed = consumer(redis, handler, "doomed", concurrency=3, claim_idle=0.3)
    await doomed.ensure_group()
    for key in "abc":
        await redis.xadd(STREAM, {"key": key})
    task = asyncio.create_task(doomed.run(asyncio.Event()))
    await until(lambda: handler.running == 3)
    task.cancel()  # the process is gone: no stopping, no acknowledgement
    await asyncio.gather(task, return_exceptions=True)
    assert sorted(handler.cancelled) == ["a", "b", "c"]
    assert await pending(redis) == 3

    survivor_handler = Slow(0.05)
    survivor = consumer(redis, survivor_handler, "survivor", concurrency=3, claim_idle=0.3)
    await run_until(survivor, lambda: len(survivor_handler.done) == 3)
    assert survivor_handler.done == {"a": 1, "b": 1, "c": 1}
    assert await pending(redis) == 0


async def test_a_transient_failure_is_retried_while_the_others_go_on(redis):
    handler = Slow(0.05)
    handler.fail_once = {"3"}
    worker = consumer(redis, handler, "one", concurrency=4)
    await worker.ensure_group()
    for index in range(8):
        await redis.xadd(STREAM, {"key": str(index)})
    await run_until(worker, lambda: len(handler.done) == 8)
    assert set(handler.done.values()) == {1}
    assert await pending(redis) == 0


async def test_stopping_cancels_slow_handlers_and_leaves_their_entries_pending(redis):
    handler = Slow(30.0)
    worker = consumer(redis, handler, "one", concurrency=2, stop_patience=0.2)
    await worker.ensure_group()
    await redis.xadd(STREAM, {"key": "a"})
    await redis.xadd(STREAM, {"key": "b"})
    await run_until(worker, lambda: handler.running == 2)
    assert sorted(handler.cancelled) == ["a", "b"] and handler.done == {}
    assert worker.holding == 0
    assert await pending(redis) == 2  # for another consumer to claim


async def test_stale_entries_go_before_new_ones_when_slots_are_few(redis):
    dead = consumer(redis, Slow(), "dead")
    await dead.ensure_group()
    for index in range(6):
        await redis.xadd(STREAM, {"key": f"stale{index}"})
    await redis.xreadgroup("g", "dead", {STREAM: ">"}, count=10)  # and dies
    for index in range(20):
        await redis.xadd(STREAM, {"key": f"new{index}"})
    await asyncio.sleep(0.35)  # the dead consumer's entries are idle past claim_idle

    order: list[str] = []
    handler = Slow(0.02)
    original = handler.__call__

    async def recording(entry_id, fields):
        order.append(fields["key"])
        return await original(entry_id, fields)

    survivor = consumer(redis, recording, "survivor", concurrency=2, claim_idle=0.3)
    await run_until(survivor, lambda: len(order) == 26)
    assert {key for key in order[:8] if key.startswith("stale")} == {f"stale{i}" for i in range(6)}
    assert await pending(redis) == 0

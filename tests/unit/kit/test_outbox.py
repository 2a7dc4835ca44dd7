"""The kit's transactional outbox and its relay, against real PostgreSQL and Redis: written
with the change or not at all, published in order to the streams the rows name, one
leader at a time, Redis outages waited out, at least once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devstack import postgres
from services.kit import outbox, tracing
from services.kit.events import decode
from services.kit.migrate import expand_includes
from services.kit.outbox import OutboxSettings, Relay, publish_batch, unpublished_count
from tests.conftest import free_port, redis_process
from tests.unit.conftest import until

POSTS, GRAPH = "test.posts", "test.graph"


@pytest.fixture(scope="module")
def outbox_dsn(postgres_server: postgres.Server) -> str:
    """A database with nothing but the kit's outbox table (what a migration includes)."""

    async def prepare() -> str:
        dsn = await postgres.ensure_database(postgres_server, "kit_outbox", "test-pw")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP TABLE IF EXISTS outbox")
            await conn.execute(
                expand_includes("-- agora:include outbox\n-- agora:include outbox_trace", "test")
            )
        finally:
            await conn.close()
        return dsn

    return asyncio.run(prepare())


@pytest.fixture
async def db(outbox_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(outbox_dsn, min_size=1, max_size=4)
    await pool.execute("TRUNCATE outbox RESTART IDENTITY")
    yield pool
    await pool.close()


def settings(dsn: str, redis_url: str, **overrides: object) -> OutboxSettings:
    values: dict[str, object] = {
        "service_name": "kitrelay",
        "database_url": dsn,
        "redis_url": redis_url,
        "outbox_standby_interval": 0.1,
        "outbox_poll_interval": 5.0,  # longer than any wait below: NOTIFY must wake it
    }
    return OutboxSettings(**{**values, **overrides})


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    stopping = asyncio.Event()
    task = asyncio.create_task(relay.run(stopping))
    try:
        yield task
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


async def entries(redis: aioredis.Redis, stream: str, count: int, patience: float = 10.0):
    """The stream's events once it has `count` entries."""

    async def enough():
        raw = await redis.xrange(stream)
        return raw if len(raw) >= count else None

    return [
        decode(stream, entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
        for entry_id, fields in await until(enough, patience)
    ]


async def test_an_event_commits_or_rolls_back_with_its_transaction(db):
    async with db.acquire() as conn:
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await outbox.write(conn, POSTS, "post.created", 1, {"text": "lost"})
                raise RuntimeError("the change failed")
        async with conn.transaction():
            await outbox.write(conn, POSTS, "post.created", 2, {"text": "kept"})
    rows = await db.fetch("SELECT aggregate_id, payload::text FROM outbox")
    assert [(r["aggregate_id"], r["payload"]) for r in rows] == [("2", '{"text": "kept"}')]


async def test_the_relay_publishes_each_event_to_its_stream_in_order(db, outbox_dsn, redis_url):
    redis = aioredis.from_url(redis_url)
    relay = Relay(settings(outbox_dsn, redis_url), redis)
    async with running(relay):
        await until(lambda: relay.leading)
        async with db.acquire() as conn, conn.transaction():
            for n in range(5):
                await outbox.write(conn, POSTS, "post.created", n, {"n": n, "price": 1.5})
            await outbox.write(conn, GRAPH, "follow.created", "7:8", {"follower": 7})
        # Woken by NOTIFY on commit, not by the (5 s) poll.
        posts = await entries(redis, POSTS, 5, patience=3)
        graph = await entries(redis, GRAPH, 1, patience=3)
    await redis.aclose()
    assert [e.payload["n"] for e in posts] == [0, 1, 2, 3, 4]
    assert [e.type for e in posts] == ["post.created"] * 5
    assert posts[0].aggregate_id == "0" and posts[0].payload == {"n": 0, "price": 1.5}
    assert posts[0].occurred_at.tzinfo is not None
    assert len({e.id for e in posts}) == 5
    assert graph[0].aggregate_id == "7:8" and graph[0].stream == GRAPH
    assert await unpublished_count(db) == 0


@contextlib.asynccontextmanager
async def relays(count: int, dsn: str, redis_url: str) -> AsyncIterator[list[tuple]]:
    """`count` relays running, each with its own stop: [(relay, stop, task)]."""
    redis = aioredis.from_url(redis_url)
    started = []
    for _ in range(count):
        relay, stop = Relay(settings(dsn, redis_url), redis), asyncio.Event()
        started.append((relay, stop, asyncio.create_task(relay.run(stop))))
    try:
        yield started
    finally:
        for _, stop, _ in started:
            stop.set()
        try:
            await asyncio.wait_for(asyncio.gather(*(task for *_, task in started)), 10)
        finally:
            await redis.aclose()


async def test_one_relay_leads_and_a_standby_takes_over_when_it_stops(
    db, outbox_dsn, redis_url, redis
):
    async with relays(2, outbox_dsn, redis_url) as started:
        await until(lambda: any(relay.leading for relay, *_ in started))
        await asyncio.sleep(0.5)  # several standby rounds later: still one leader
        assert [relay.leading for relay, *_ in started].count(True) == 1
        leader = next(n for n, (relay, *_) in enumerate(started) if relay.leading)
        async with db.acquire() as conn:
            await outbox.write(conn, POSTS, "post.created", 1, {})
        await entries(redis, POSTS, 1)
        _, stop, task = started[leader]
        stop.set()  # a SIGTERM: its session ends, and the lock with it
        await asyncio.wait_for(task, 10)
        standby = started[1 - leader][0]
        await until(lambda: standby.leading)
        async with db.acquire() as conn:
            await outbox.write(conn, POSTS, "post.created", 2, {})
        assert [e.aggregate_id for e in await entries(redis, POSTS, 2)] == ["1", "2"]


async def test_a_leader_whose_session_dies_hands_over(db, outbox_dsn, redis_url, redis):
    """Like a SIGKILL of its process: the leader's PostgreSQL session is terminated."""
    async with relays(2, outbox_dsn, redis_url) as started:
        await until(lambda: any(relay.leading for relay, *_ in started))
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        async with db.acquire() as conn:
            await outbox.write(conn, POSTS, "post.created", 9, {})
        assert [e.aggregate_id for e in await entries(redis, POSTS, 1)] == ["9"]
        # The old leader noticed at once (not a 5 s poll later): one leader again.
        await until(lambda: [r.leading for r, *_ in started].count(True) == 1, patience=2)


async def test_redis_down_is_waited_out_and_nothing_is_lost(db, outbox_dsn):
    port = free_port()
    redis = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    relay = Relay(settings(outbox_dsn, f"redis://127.0.0.1:{port}/0"), redis)
    async with running(relay) as task:
        await until(lambda: relay.leading)
        async with db.acquire() as conn:
            for n in range(3):
                await outbox.write(conn, POSTS, "post.created", n, {})
        await asyncio.sleep(1.0)  # the relay retries against a Redis that is not there
        assert not task.done() and relay.leading
        assert await unpublished_count(db) == 3
        with redis_process(port):  # Redis comes (back) on its address
            published = await entries(redis, POSTS, 3, patience=15)
            assert [e.aggregate_id for e in published] == ["0", "1", "2"]

            async def all_marked() -> bool:
                return await unpublished_count(db) == 0

            await until(all_marked)
    await redis.aclose()


async def test_a_batch_whose_mark_was_lost_is_published_again(db, redis):
    """A crash between XADD and the UPDATE: at least once, with the same event ids."""
    async with db.acquire() as conn:
        await outbox.write(conn, POSTS, "post.created", 1, {"v": 1})
        assert await publish_batch(conn, redis, batch=10, maxlen=10_000) == {POSTS: 1}
        await conn.execute("UPDATE outbox SET published_at = NULL")  # the mark never committed
        assert await publish_batch(conn, redis, batch=10, maxlen=10_000) == {POSTS: 1}
        assert await publish_batch(conn, redis, batch=10, maxlen=10_000) == {}
    first, again = await entries(redis, POSTS, 2)
    assert first.id == again.id and first.entry_id != again.entry_id


async def test_a_traced_event_is_published_in_a_span_its_consumer_continues(db, redis):
    """Writer span -> the relay's publish span -> the entry's traceparent (what the
    consumer's span is a child of); an unsampled writer's traceparent passes on as it is."""
    exporter = InMemorySpanExporter()
    tracer = tracing.provider_for("kitrelay", exporter=exporter, environ={}).get_tracer("t")
    unsampled = f"00-{'1' * 32}-{'2' * 16}-00"
    async with db.acquire() as conn:
        with tracer.start_as_current_span("request") as writer:
            await outbox.write(conn, POSTS, "post.created", 1, {})
        token = otel_context.attach(tracing.PROPAGATOR.extract({"traceparent": unsampled}))
        try:
            await outbox.write(conn, POSTS, "post.created", 2, {})
        finally:
            otel_context.detach(token)
        await outbox.write(conn, POSTS, "post.created", 3, {})  # outside any trace
        await publish_batch(conn, redis, batch=10, maxlen=10_000, tracer=tracer)
    traced, passed_on, untraced = await entries(redis, POSTS, 3)
    (publish,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert publish.name == f"{POSTS} publish"
    assert publish.parent.span_id == writer.get_span_context().span_id
    assert publish.context.trace_id == writer.get_span_context().trace_id
    ids, flags = traced.traceparent.rsplit("-", 1)
    assert ids == f"00-{publish.context.trace_id:032x}-{publish.context.span_id:016x}"
    assert int(flags, 16) & 1  # sampled
    assert passed_on.traceparent == unsampled
    assert untraced.traceparent is None


async def test_batches_are_bounded_and_oldest_first(db, redis):
    async with db.acquire() as conn:
        for n in range(5):
            await outbox.write(conn, POSTS, "post.created", n, {})
        assert await publish_batch(conn, redis, batch=2, maxlen=10_000) == {POSTS: 2}
        assert await unpublished_count(conn) == 3
        assert await publish_batch(conn, redis, batch=10, maxlen=10_000) == {POSTS: 3}
    assert [e.aggregate_id for e in await entries(redis, POSTS, 5)] == list("01234")


async def test_a_relay_started_before_its_table_exists_waits_for_it(
    postgres_server, redis_url, redis
):
    """A SQL error (here: migrations not applied yet) ends a leadership, never the relay."""
    dsn = await postgres.ensure_database(postgres_server, "kit_outbox_late", "test-pw")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS outbox")
        async with relays(1, dsn, redis_url) as [(_, _, task)]:
            await asyncio.sleep(0.5)  # it leads, fails on the missing table, backs off, again
            assert not task.done()
            await conn.execute(
                expand_includes("-- agora:include outbox\n-- agora:include outbox_trace", "test")
            )
            await outbox.write(conn, POSTS, "post.created", 1, {})
            assert [e.aggregate_id for e in await entries(redis, POSTS, 1)] == ["1"]
    finally:
        await conn.close()

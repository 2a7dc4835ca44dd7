"""The event envelope and a service consuming several streams (services/kit/events.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from services.kit import app as kit
from services.kit.api import Api
from services.kit.events import (
    ConsumerSettings,
    Event,
    Subscription,
    consuming,
    decode,
    stream_fields,
)
from services.kit.keys import EVENT_CONSUMERS
from services.kit.streams import InvalidEntry
from tests.unit.conftest import until

POSTS, GRAPH = "test.posts", "test.graph"


def fields(event_type="post.created", aggregate_id=1, payload='{"text": "hi"}', **changes):
    made = stream_fields(uuid.uuid4(), event_type, aggregate_id, datetime.now(UTC), payload)
    return {**made, **changes}


def test_fields_decode_to_the_event_that_was_written():
    event_id, when = uuid.uuid4(), datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    written = stream_fields(event_id, "post.created", 42, when, '{"text": "hi", "n": 1}')
    event = decode(POSTS, "1-0", written)
    assert event == Event(
        id=event_id,
        type="post.created",
        aggregate_id="42",
        occurred_at=when,
        payload={"text": "hi", "n": 1},
        stream=POSTS,
        entry_id="1-0",
    )


@pytest.mark.parametrize(
    "broken",
    [
        {"event_id": "not-a-uuid"},
        {"occurred_at": "2026-01-02T03:04:05"},  # no time zone
        {"occurred_at": "yesterday"},
        {"payload": "[1, 2]"},  # not an object
        {"payload": "{"},
        {"type": ""},
        {"aggregate_id": ""},
    ],
)
def test_what_is_not_an_event_is_an_invalid_entry(broken):
    with pytest.raises(InvalidEntry):
        decode(POSTS, "1-0", fields(**broken))


def test_a_missing_field_is_an_invalid_entry():
    incomplete = fields()
    del incomplete["aggregate_id"]
    with pytest.raises(InvalidEntry):
        decode(POSTS, "1-0", incomplete)


class PostCreated(BaseModel):
    text: str


def test_a_payload_is_validated_against_a_model_on_request():
    event = decode(POSTS, "1-0", fields())
    assert event.payload_as(PostCreated) == PostCreated(text="hi")
    with pytest.raises(InvalidEntry, match=r"post\.created payload"):
        decode(POSTS, "1-0", fields(payload='{"text": 5}')).payload_as(PostCreated)


def test_the_consumer_group_defaults_to_the_service_name():
    assert ConsumerSettings(service_name="timelines").consumer_group == "timelines"
    assert ConsumerSettings(service_name="a", consumer_group="b").consumer_group == "b"


class Seen:
    def __init__(self) -> None:
        self.events: dict[uuid.UUID, Event] = {}

    async def __call__(self, event: Event) -> bool:
        if event.payload.get("poison"):
            raise InvalidEntry("poisonous")
        fresh = event.id not in self.events
        self.events.setdefault(event.id, event)
        return fresh


async def test_one_service_consumes_several_streams(aiohttp_client, redis_url, redis):
    posts, graph = Seen(), Seen()
    settings = ConsumerSettings(
        service_name="kit-events", redis_url=redis_url, claim_idle_seconds=0.5
    )
    app = kit.create_app(
        settings,
        Api("kit-events", title="test"),
        redis=True,
        contexts=consuming(lambda app: [Subscription(POSTS, posts), Subscription(GRAPH, graph)]),
    )
    client = await aiohttp_client(app)
    assert [c.stream for c in app[EVENT_CONSUMERS]] == [POSTS, GRAPH]
    assert {c.group for c in app[EVENT_CONSUMERS]} == {"kit-events"}

    again = fields(aggregate_id=1)
    for entry in (again, again, fields(payload='{"poison": true}'), fields(aggregate_id=3)):
        await redis.xadd(POSTS, entry)  # a duplicate and a poisonous one in the middle
    await redis.xadd(GRAPH, fields("follow.created", "7:8", '{"follower": 7}'))
    await until(lambda: len(posts.events) == 2 and graph.events)
    assert sorted(e.aggregate_id for e in posts.events.values()) == ["1", "3"]
    assert [e.type for e in graph.events.values()] == ["follow.created"]
    assert all(e.stream == GRAPH for e in graph.events.values())
    assert len(await redis.xrange(f"{POSTS}:dead")) == 1  # set aside, the rest flowed

    ready = await (await client.get("/readyz")).json()
    assert ready["dependencies"][f"consumer {POSTS}"] == "ok"
    assert ready["dependencies"][f"consumer {GRAPH}"] == "ok"
    metrics = await (await client.get("/metrics")).text()
    assert f'events_delay_seconds_count{{service="kit-events",stream="{GRAPH}"}} 1.0' in metrics

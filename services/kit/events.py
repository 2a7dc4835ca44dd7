"""Events between services: the envelope, and consuming streams of them.

An event is what a service tells the others about a change in its own data: `order.created`,
`user.created`, `post.deleted`. It is written by the producer in the same transaction as the
change (the transactional outbox: services.kit.outbox), published to a Redis stream by the
outbox relay, and read by each consuming service through a consumer group
(services.kit.streams), at least once. So a consumer's handler must be idempotent, keyed on
`event.id` (or on what the event changes), answering False for an event it had processed.

On the stream an event is five string fields:

    event_id      a UUID, unique per event (also across redeliveries: dedupe on it)
    type          "<aggregate>.<what happened>", e.g. "order.created"
    aggregate_id  the id of the thing that changed, as text (e.g. the order's id)
    occurred_at   ISO 8601 with time zone: when the producer's transaction wrote it
    payload       a JSON object: what the consumers need to know (the producer's choice)

A service consumes one or several streams with `consuming(...)` (one cleanup context,
one background loop named "consumer"): one StreamConsumer per stream, all in the same
loop, so a stream that fails (a poisonous entry, its Redis key deleted) never holds up
the others, and each stream keeps its own order. The consumers share the settings of
ConsumerSettings (group, batch, claim time, concurrency). With CONSUMER_CONCURRENCY 1 (the
default) a stream's entries are handled one at a time, in order; above 1 that many at once,
in no order, their leases renewed while they run (services.kit.streams): for handlers that
wait on the network, whose events need no order (the crawler's URL checks).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from aiohttp import web
from prometheus_client import Histogram
from pydantic import BaseModel, Field, ValidationError, model_validator

from .background import background
from .config import KitSettings
from .jsoncodec import dumps
from .keys import EVENT_CONSUMERS, READINESS, REDIS, SETTINGS, TRACER
from .streams import ConsumerOptions, Fields, InvalidEntry, StreamConsumer
from .tracing import Tracer, consume_span

ModelT = TypeVar("ModelT", bound=BaseModel)
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

DELAY = Histogram(
    "events_delay_seconds",
    "From an event's commit at its producer to its first processing here.",
    ("service", "stream"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


@dataclass(frozen=True)
class Event:
    """One event as a consumer receives it (decoded and checked)."""

    id: uuid.UUID
    type: str
    aggregate_id: str
    occurred_at: datetime
    payload: dict[str, Any]
    stream: str = ""
    entry_id: str = ""  # the Redis stream entry it came in
    traceparent: str | None = None  # of the span that wrote it (services.kit.tracing)

    def payload_as(self, model: type[ModelT]) -> ModelT:
        """The payload validated as `model`; InvalidEntry (dead-lettered) if it is not."""
        try:
            return model.model_validate(self.payload)
        except ValidationError as error:
            raise InvalidEntry(f"{self.type} payload: {error}") from None


def encode_payload(payload: object) -> str:
    """A payload as the outbox stores it (JSON text; decimals and datetimes as strings)."""
    return dumps(payload).decode()


def stream_fields(
    event_id: uuid.UUID | str,
    event_type: str,
    aggregate_id: object,
    occurred_at: datetime,
    payload_json: str,
    traceparent: str | None = None,
) -> Fields:
    """An event as stream fields (what the outbox relay XADDs); `traceparent`, when the
    writer was traced, is a sixth field."""
    fields = {
        "event_id": str(event_id),
        "type": event_type,
        "aggregate_id": str(aggregate_id),
        "occurred_at": occurred_at.isoformat(),
        "payload": payload_json,
    }
    if traceparent:
        fields["traceparent"] = traceparent
    return fields


def decode(stream: str, entry_id: str, fields: Fields) -> Event:
    """Stream fields as an Event; InvalidEntry when they are not one."""
    try:
        occurred_at = datetime.fromisoformat(fields["occurred_at"])
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at has no time zone")
        payload = orjson.loads(fields["payload"])
        if not isinstance(payload, dict):
            raise ValueError("payload is not a JSON object")
        event_type = fields["type"]
        aggregate_id = fields["aggregate_id"]
        if not event_type or not aggregate_id:
            raise ValueError("type and aggregate_id must not be empty")
        return Event(
            id=uuid.UUID(fields["event_id"]),
            type=event_type,
            aggregate_id=aggregate_id,
            occurred_at=occurred_at,
            payload=payload,
            stream=stream,
            entry_id=entry_id,
            traceparent=fields.get("traceparent") or None,
        )
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidEntry(f"not an event: {type(error).__name__}: {error}") from None


# ---------------------------------------------------------------- consuming

# event -> True when processed now, False when it had been processed before (a redelivery).
EventHandler = Callable[[Event], Awaitable[bool]]


class ConsumerSettings(KitSettings):
    """Settings of a service that consumes event streams (services.kit.events.consuming)."""

    consumer_group: str = Field(
        "", max_length=200, description="the consumer group; empty: the service's name"
    )
    claim_idle_seconds: float = Field(
        30.0, gt=0, le=3600, description="an entry pending this long is claimed from its consumer"
    )
    consumer_batch: int = Field(100, ge=1, le=10_000)
    consumer_concurrency: int = Field(
        1,
        ge=1,
        le=10_000,
        description="entries handled at once per stream; 1: one at a time, in order",
    )

    @model_validator(mode="after")
    def _group_defaults_to_service(self) -> ConsumerSettings:
        if not self.consumer_group:
            object.__setattr__(self, "consumer_group", self.service_name)
        return self


@dataclass(frozen=True)
class Subscription:
    """One stream a service consumes, and what it does with each event."""

    stream: str
    handler: EventHandler


def event_handler(
    service: str, stream: str, handler: EventHandler, tracer: Tracer | None = None
) -> Callable[..., Any]:
    """A StreamConsumer handler: decodes the entry, calls `handler` (in a span that is the
    writer's child, when tracing is on), and records the delay from the producer's commit
    for events processed now."""
    delay = DELAY.labels(service, stream)

    async def handle(entry_id: str, fields: Fields) -> bool:
        event = decode(stream, entry_id, fields)
        if tracer is None:
            fresh = await handler(event)
        else:
            with consume_span(tracer, stream, event.type, event.traceparent) as span:
                fresh = await handler(event)
                span.set_attribute("agora.redelivered", not fresh)
        if fresh:
            delay.observe(max(0.0, time.time() - event.occurred_at.timestamp()))
        return fresh

    return handle


def consuming(
    subscriptions: Callable[[web.Application], Sequence[Subscription]],
) -> Sequence[CleanupCtx]:
    """The cleanup contexts that consume every stream `subscriptions(app)` names (called
    once the kit's pools exist, so handlers can hold app[DB_POOL]). Put them in
    create_app(contexts=...); the app needs redis=True and ConsumerSettings.

    app[EVENT_CONSUMERS] holds the StreamConsumers; /readyz reports each one's last
    error (never failing the probe: Redis is shared by every replica)."""

    async def setup(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        assert isinstance(settings, ConsumerSettings), "consuming needs ConsumerSettings"
        options = ConsumerOptions(
            batch=settings.consumer_batch,
            claim_idle=settings.claim_idle_seconds,
            concurrency=settings.consumer_concurrency,
        )
        consumers = [
            StreamConsumer(
                app[REDIS],
                service=settings.service_name,
                stream=subscription.stream,
                group=settings.consumer_group,
                handler=event_handler(
                    settings.service_name,
                    subscription.stream,
                    subscription.handler,
                    app.get(TRACER),
                ),
                options=options,
            )
            for subscription in subscriptions(app)
        ]
        app[EVENT_CONSUMERS] = consumers

        def check(consumer: StreamConsumer) -> Callable[[], Awaitable[None]]:
            async def consuming_stream() -> None:
                if consumer.last_error:
                    raise RuntimeError(consumer.last_error)

            return consuming_stream

        for consumer in consumers:
            name = "consumer" if len(consumers) == 1 else f"consumer {consumer.stream}"
            app[READINESS].add_check(name, check(consumer))
        yield

    async def consume(app: web.Application, stopping: asyncio.Event) -> None:
        await asyncio.gather(*(consumer.run(stopping) for consumer in app[EVENT_CONSUMERS]))

    return [setup, background("consumer", consume)]

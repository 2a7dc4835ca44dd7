"""Response schemas and queries of notifications."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from services.kit.api import PageQuery
from services.kit.fields import Id


class Notification(BaseModel):
    id: int
    event_id: UUID
    event_type: str = Field(examples=["order.created"])
    order_id: int
    user_id: int | None
    message: str = Field(examples=["Order 12 placed: 2 items, total 300.00"])
    occurred_at: datetime = Field(description="when orders committed the event")
    processed_at: datetime = Field(description="when this service processed it")


class NotificationQuery(PageQuery):
    order_id: Id | None = None

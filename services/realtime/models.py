"""What realtime answers: the count of connected clients."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OnlineOut(BaseModel):
    connections: int = Field(ge=0, description="counter connections open on every replica")
    replicas: int = Field(ge=1, description="replicas counted")
    workers: int = Field(ge=1, description="worker processes counted (replicas x workers)")
    partial: bool = Field(
        description="true while Redis is unreachable: this worker's connections only"
    )

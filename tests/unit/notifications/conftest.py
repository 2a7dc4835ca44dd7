from __future__ import annotations

import pytest

from services.notifications.app import Settings, create_app
from tests.unit.conftest import truncate_all

STREAM = "orders.events"


@pytest.fixture
def notifications_settings(databases, redis_url):
    def make(**overrides) -> Settings:
        values = {
            "service_name": "notifications",
            "database_url": databases["notifications"],
            "redis_url": redis_url,
            "events_stream": STREAM,
            "claim_idle_seconds": 0.5,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
async def client(aiohttp_client, databases, notifications_settings):
    await truncate_all(databases["notifications"])
    return await aiohttp_client(create_app(notifications_settings()))

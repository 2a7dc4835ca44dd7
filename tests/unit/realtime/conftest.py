from __future__ import annotations

import pytest

from services.realtime.app import Settings, create_app


@pytest.fixture
def realtime_settings(redis_url):
    def make(**overrides) -> Settings:
        values = {
            "service_name": "realtime",
            "redis_url": redis_url,
            "presence_ttl": 2.0,
            "counter_min_interval": 0.05,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
def start_replica(aiohttp_client, realtime_settings):
    """A realtime app as one replica: `port` tells replicas apart (as devstack's do)."""

    async def start(port: int, **overrides):
        return await aiohttp_client(create_app(realtime_settings(port=port, **overrides)))

    return start

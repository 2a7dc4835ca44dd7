from __future__ import annotations

import pytest

from services.engagement.app import Settings, create_app
from tests.unit.conftest import truncate_all
from tests.unit.social import Social, social


@pytest.fixture
async def network(aiohttp_client, databases, redis_url, auth_keys) -> Social:
    return await social(aiohttp_client, databases, redis_url, auth_keys)


@pytest.fixture
def engagement_settings(databases, redis_url, auth_keys, network):
    def make(**overrides) -> Settings:
        values = {
            "service_name": "engagement",
            "database_url": databases["engagement"],
            "redis_url": redis_url,
            "posts_url": network.posts_url,
            "users_url": network.users_url,
            "auth_public_key_file": auth_keys.public_file,
            "claim_idle_seconds": 0.5,
            "db_pool_max": 20,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
async def client(aiohttp_client, databases, engagement_settings):
    await truncate_all(databases["engagement"])
    return await aiohttp_client(create_app(engagement_settings()))

from __future__ import annotations

import pytest

from services.search.app import Settings, create_app
from tests.unit.conftest import truncate_all
from tests.unit.social import Social, social


@pytest.fixture
async def network(aiohttp_client, databases, redis_url, auth_keys) -> Social:
    return await social(aiohttp_client, databases, redis_url, auth_keys)


@pytest.fixture
def search_settings(databases, redis_url, network):
    def make(**overrides) -> Settings:
        values = {
            "service_name": "search",
            "database_url": databases["search"],
            "redis_url": redis_url,
            "posts_url": network.posts_url,
            "users_url": network.users_url,
            "claim_idle_seconds": 0.5,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
async def client(aiohttp_client, databases, search_settings):
    await truncate_all(databases["search"])
    return await aiohttp_client(create_app(search_settings()))

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from services.users.app import Settings, create_app
from tests.unit.conftest import AuthKeys, truncate_all

# Cheap hashes for the tests (the real parameters: services/users/passwords.py).
FAST_HASHES = {"password_hash_time_cost": 1, "password_hash_memory_kib": 64}


def users_settings(dsn: str, redis_url: str, keys: AuthKeys, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "service_name": "users",
        "database_url": dsn,
        "redis_url": redis_url,
        "auth_public_key_file": keys.public_file,
        "auth_private_key_file": keys.private_file,
        **FAST_HASHES,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
async def users_dsn(databases: dict[str, str]) -> str:
    dsn = databases["users"]
    await truncate_all(dsn)
    return dsn


@pytest.fixture
def make_settings(users_dsn: str, redis_url: str, auth_keys: AuthKeys):
    def make(**overrides: object) -> Settings:
        url = overrides.pop("redis_url", redis_url)
        return users_settings(users_dsn, str(url), auth_keys, **overrides)

    return make


@pytest.fixture
async def client(aiohttp_client, make_settings) -> TestClient:
    return await aiohttp_client(create_app(make_settings()))

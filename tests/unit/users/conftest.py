from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from services.users.app import create_app
from tests.unit.conftest import settings_for, truncate_all


@pytest.fixture
async def users_dsn(databases: dict[str, str]) -> str:
    dsn = databases["users"]
    await truncate_all(dsn)
    return dsn


@pytest.fixture
async def client(aiohttp_client, users_dsn: str) -> TestClient:
    return await aiohttp_client(create_app(settings_for("users", database_url=users_dsn)))

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from services.catalog.app import create_app
from tests.unit.conftest import settings_for, truncate_all


@pytest.fixture
async def catalog_dsn(databases: dict[str, str]) -> str:
    dsn = databases["catalog"]
    await truncate_all(dsn)
    return dsn


@pytest.fixture
async def client(aiohttp_client, catalog_dsn: str) -> TestClient:
    return await aiohttp_client(create_app(settings_for("catalog", database_url=catalog_dsn)))

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from services.calc.app import create_app
from tests.unit.conftest import settings_for


@pytest.fixture
async def client(aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings_for("calc")))

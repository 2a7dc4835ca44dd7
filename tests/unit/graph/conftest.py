"""graph against a real users server (its own app, on a local port), real PostgreSQL and
Redis."""

from __future__ import annotations

import pytest

from services.graph.app import Settings, create_app
from tests.unit.conftest import AuthKeys, truncate_all
from tests.unit.social_conftest import (
    make_account,
    social_settings,
    users,  # noqa: F401 (a fixture)
)


@pytest.fixture
async def graph_dsn(databases: dict[str, str]) -> str:
    await truncate_all(databases["graph"])
    return databases["graph"]


@pytest.fixture
def graph_settings(graph_dsn, redis_url, auth_keys: AuthKeys, users):  # noqa: F811
    return social_settings(Settings, "graph", graph_dsn, redis_url, users, auth_keys)


@pytest.fixture
async def client(aiohttp_client, graph_settings):
    return await aiohttp_client(create_app(graph_settings()))


@pytest.fixture
async def people(users):  # noqa: F811
    """Eight accounts: their ids, in the order made."""
    return [(await make_account(users, f"user{n}"))["id"] for n in range(8)]


@pytest.fixture
def as_user(auth_keys: AuthKeys):
    def header(user_id: int) -> dict[str, str]:
        return auth_keys.header(user_id, f"user-{user_id}")

    return header

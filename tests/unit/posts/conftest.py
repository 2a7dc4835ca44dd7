"""posts against a real users server (its own app, on a local port), real PostgreSQL and
Redis."""

from __future__ import annotations

import pytest

from services.posts.app import Settings, create_app
from tests.unit.conftest import AuthKeys, truncate_all
from tests.unit.social_conftest import (
    make_account,
    social_settings,
    users,  # noqa: F401 (a fixture)
)


@pytest.fixture
async def posts_dsn(databases: dict[str, str]) -> str:
    await truncate_all(databases["posts"])
    return databases["posts"]


@pytest.fixture
def posts_settings(posts_dsn, redis_url, auth_keys: AuthKeys, users):  # noqa: F811
    return social_settings(Settings, "posts", posts_dsn, redis_url, users, auth_keys)


@pytest.fixture
async def client(aiohttp_client, posts_settings):
    return await aiohttp_client(create_app(posts_settings()))


@pytest.fixture
async def accounts(users):  # noqa: F811
    """ana, bob and cy, as users knows them."""
    return {name: await make_account(users, name) for name in ("ana", "bob", "cy.d")}


@pytest.fixture
def as_user(auth_keys: AuthKeys, accounts):
    """Authorization headers of one of the accounts."""

    def header(name: str) -> dict[str, str]:
        return auth_keys.header(accounts[name]["id"], accounts[name]["username"])

    return header

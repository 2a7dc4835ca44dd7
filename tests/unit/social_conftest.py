"""Fixtures shared by the social services' unit tests (posts, graph): a real users
server with accounts, and helpers to read a service's outbox."""

from __future__ import annotations

from typing import TypeVar

import asyncpg
import orjson
import pytest

from services.kit.config import KitSettings
from services.users.app import create_app as create_users
from tests.conftest import free_port
from tests.unit.conftest import AuthKeys, truncate_all
from tests.unit.users.conftest import users_settings

SettingsT = TypeVar("SettingsT", bound=KitSettings)


@pytest.fixture
async def users(aiohttp_client, databases, redis_url, auth_keys):
    await truncate_all(databases["users"])
    return await aiohttp_client(
        create_users(users_settings(databases["users"], redis_url, auth_keys))
    )


def social_settings(
    cls: type[SettingsT], service: str, dsn: str, redis_url: str, users, keys: AuthKeys
):
    """make(**overrides): the settings of a service that calls users and checks tokens."""

    def make(**overrides: object) -> SettingsT:
        values = {
            "service_name": service,
            "database_url": dsn,
            "redis_url": redis_url,
            "users_url": url_of(users),
            "auth_public_key_file": keys.public_file,
            "upstream_timeout": 10,  # a loaded machine: a refused connection fails at once
            "upstream_retries": 0,
        }
        return cls(**{**values, **overrides})

    return make


def url_of(test_client) -> str:
    return str(test_client.server.make_url("")).rstrip("/")


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def make_account(users, username: str) -> dict:
    resp = await users.post(
        "/api/v1/users", json={"name": username, "username": username, "password": "pass word"}
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def outbox_events(dsn: str) -> list[tuple[str, str, dict]]:
    """(event type, aggregate id, payload) of every event written, in order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_type, aggregate_id, payload::text AS payload FROM outbox ORDER BY id"
        )
    finally:
        await conn.close()
    return [(r["event_type"], r["aggregate_id"], orjson.loads(r["payload"])) for r in rows]


async def count_rows(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()

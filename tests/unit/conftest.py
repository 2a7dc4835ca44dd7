"""Unit-test fixtures: each service's app against its own database on the test server."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from devstack import postgres
from services.kit.auth import TokenSigner, write_keypair
from services.kit.config import KitSettings, load_settings
from services.kit.migrate import migrate

SERVICES_ROOT = Path(__file__).resolve().parents[2] / "services"


@pytest.fixture(scope="session")
def databases(postgres_server: postgres.Server) -> dict[str, str]:
    """service -> DSN of its migrated database, for every service that has migrations."""
    services = sorted(p.parent.name for p in SERVICES_ROOT.glob("*/migrations"))

    async def prepare() -> dict[str, str]:
        dsns = {}
        for service in services:
            dsns[service] = await postgres.ensure_database(postgres_server, service, "test-pw")
            await migrate(dsns[service], service)
        return dsns

    return asyncio.run(prepare())


async def truncate_all(dsn: str) -> None:
    """Empty every table but the migration record, and restart the ids."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )
        if tables:
            names = ", ".join(f'"{row["tablename"]}"' for row in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def redis_url(redis_server: str) -> str:
    """The test Redis, emptied for this test."""
    client = aioredis.from_url(redis_server)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return redis_server


@pytest.fixture
async def redis(redis_url: str):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def settings_for(service: str, **overrides: object) -> KitSettings:
    return KitSettings(service_name=service, **overrides)


def refused_setting(monkeypatch, capsys, cls: type[KitSettings], variable: str, value: str) -> str:
    """What load_settings prints when `variable` is `value`: it must stop the process."""
    monkeypatch.setenv("SERVICE_NAME", "sample")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit):
        load_settings(cls)
    return capsys.readouterr().err


@dataclass(frozen=True)
class AuthKeys:
    """A keypair on disk, as devstack makes one: give `public_file` to a service as
    AUTH_PUBLIC_KEY_FILE (and `private_file` as AUTH_PRIVATE_KEY_FILE to the signer), and
    mint tokens for its tests with `token(user_id, username)`."""

    public_file: str
    private_file: str
    signer: TokenSigner

    def token(self, user_id: int, username: str = "someone", **issue: Any) -> str:
        return self.signer.issue(user_id, username, **issue)

    def header(self, user_id: int, username: str = "someone") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, username)}"}


def make_auth_keys(directory: Path) -> AuthKeys:
    key = write_keypair(directory)
    signer = TokenSigner(key, issuer="agora-users", audience="agora", ttl=3600)
    return AuthKeys(str(directory / "public.pem"), str(directory / "private.pem"), signer)


@pytest.fixture(scope="session")
def auth_keys(tmp_path_factory: pytest.TempPathFactory) -> AuthKeys:
    return make_auth_keys(tmp_path_factory.mktemp("auth"))


async def until(condition, patience: float = 10.0):
    """condition()'s first true value (awaited if it is a coroutine), polled."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not true after {patience} s")
        await asyncio.sleep(0.02)

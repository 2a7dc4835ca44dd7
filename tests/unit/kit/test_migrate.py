"""The migration runner: idempotent, safe when replicas race, strict about history."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from devstack import postgres
from services.kit import migrate as runner


@pytest.fixture
async def fresh_dsn(postgres_server, request) -> str:
    name = f"m_{request.node.name.lower()[:40].replace('[', '_').replace(']', '')}"
    conn = await asyncpg.connect(postgres_server.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await conn.close()
    return await postgres.ensure_database(postgres_server, name, "pw")


async def applied_versions(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        ]
    finally:
        await conn.close()


async def test_second_run_applies_nothing(fresh_dsn):
    first = await runner.migrate(fresh_dsn, "catalog")
    second = await runner.migrate(fresh_dsn, "catalog")
    assert first == ["0001_init", "0002_reservations"]
    assert second == []
    assert await applied_versions(fresh_dsn) == [1, 2]


async def test_racing_runners_apply_each_file_once(fresh_dsn):
    results = await asyncio.gather(*(runner.migrate(fresh_dsn, "users") for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 4]
    assert await applied_versions(fresh_dsn) == [1, 2, 3, 4]


def test_a_kit_snippet_is_included_and_checksummed_with_the_migration():
    accounts = runner.load_migrations("users")[1]
    assert accounts.name == "accounts"
    assert "CREATE TABLE outbox" in accounts.sql and not runner.INCLUDE.search(accounts.sql)
    plain = runner.Migration(2, "accounts", accounts.sql.replace("CREATE TABLE outbox", "x"))
    assert plain.checksum != accounts.checksum  # a changed snippet is a changed migration
    with pytest.raises(runner.MigrationError, match="no kit snippet named 'nope'"):
        runner.expand_includes("-- agora:include nope", "users/0003_x.sql")


async def test_the_included_outbox_matches_the_one_orders_altered(databases):
    """orders converted its own outbox (0002_kit_outbox.sql); users included the kit's.
    Both must be the table the kit's relay reads."""

    async def columns(dsn: str) -> list[tuple]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_name = 'outbox' ORDER BY column_name"
            )
            checks = await conn.fetchval(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'outbox'::regclass"
                " AND contype = 'c'"
            )
        finally:
            await conn.close()
        return [tuple(row) for row in rows] + [("checks", checks)]

    assert await columns(databases["orders"]) == await columns(databases["users"])


async def test_a_changed_migration_is_refused(fresh_dsn):
    await runner.migrate(fresh_dsn, "catalog")
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(runner.MigrationError, match="changed after it was applied"):
        await runner.migrate(fresh_dsn, "catalog")


async def test_seed_loads_demo_data_once(fresh_dsn):
    await runner.migrate(fresh_dsn, "users", seed=True)
    await runner.migrate(fresh_dsn, "users", seed=True)
    conn = await asyncpg.connect(fresh_dsn)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM users ORDER BY id")]
    finally:
        await conn.close()
    assert names == ["Ivo", "Ana", "Marko", "Maja", "Iva"]


async def test_seed_leaves_a_used_database_alone(fresh_dsn):
    await runner.migrate(fresh_dsn, "catalog")
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await conn.execute("INSERT INTO products (name, price, quantity) VALUES ('Mine', 1, 1)")
        await runner.migrate(fresh_dsn, "catalog", seed=True)
        assert await conn.fetchval("SELECT count(*) FROM products") == 1
    finally:
        await conn.close()

"""The chart's ensure-databases.sh, run for real with psql against a private PostgreSQL:
one role and database per service, idempotent, passwords updated from the Secret."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg

from devstack import postgres

from .conftest import Rendered


def run_script(script: Path, server: postgres.Server, passwords: Path) -> str:
    env = {
        **os.environ,
        "PGHOST": str(server.socket_dir),
        "PGPORT": str(server.port),
        "PGUSER": "postgres",
        "PASSWORD_DIR": str(passwords),
    }
    result = subprocess.run(["sh", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def can_log_in(server: postgres.Server, name: str, password: str) -> bool:
    async def attempt() -> bool:
        try:
            connection = await asyncpg.connect(server.dsn(name, password))
        except asyncpg.InvalidPasswordError:
            return False
        try:
            return await connection.fetchval("SELECT current_database()") == name
        finally:
            await connection.close()

    return asyncio.run(attempt())


def test_ensure_databases_creates_and_updates_roles(
    default_render: Rendered, postgres_server: postgres.Server, tmp_path: Path
) -> None:
    script = tmp_path / "ensure-databases.sh"
    config = default_render.get("ConfigMap", "agora-postgresql-init")
    script.write_text(config["data"]["ensure-databases.sh"])
    passwords = tmp_path / "passwords"
    passwords.mkdir()
    (passwords / "postgres-password").write_text("the superuser's, never a role")
    (passwords / "it's-password").write_text("quote'd password")
    (passwords / "ledger-password").write_text("first")

    output = run_script(script, postgres_server, passwords)
    assert "database and role ledger ready" in output
    assert can_log_in(postgres_server, "ledger", "first")
    assert can_log_in(postgres_server, "it's", "quote'd password")  # identifiers quoted

    (passwords / "ledger-password").write_text("rotated")
    run_script(script, postgres_server, passwords)  # again: nothing fails, password follows
    assert can_log_in(postgres_server, "ledger", "rotated")
    assert not can_log_in(postgres_server, "ledger", "first")

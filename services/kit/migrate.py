"""Versioned SQL migrations, one runner for every service.

    agora-migrate <service> [--seed]        (DATABASE_URL from the environment)

Files are services/<service>/migrations/NNNN_name.sql, applied in order, each in its own
transaction, and recorded with a checksum in schema_migrations. A session-level advisory
lock serialises runners, so two replicas (or two Jobs) starting at once apply each file
exactly once; running it again applies nothing. `--seed` then runs the service's
seed.sql, which must itself only insert into empty tables.

A line `-- agora:include <name>` in a migration is replaced by the kit's SQL snippet
services/kit/sql/<name>.sql (the outbox table, say: one definition for every service).
The checksum covers the expanded text, so a snippet, like a migration, is never edited
once applied: the runner refuses a database whose applied migration no longer matches.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from .db import connect_with_retry

log = logging.getLogger("agora.migrate")

SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


INCLUDE = re.compile(r"^--\s*agora:include\s+([a-z0-9_]+)\s*$", re.MULTILINE)


class MigrationError(RuntimeError):
    pass


def expand_includes(sql: str, where: str) -> str:
    """The kit's snippets in place of their `-- agora:include <name>` lines."""

    def snippet(match: re.Match[str]) -> str:
        path = resources.files("services.kit") / "sql" / f"{match.group(1)}.sql"
        if not path.is_file():
            raise MigrationError(f"{where}: no kit snippet named {match.group(1)!r}")
        return path.read_text().rstrip("\n")

    return INCLUDE.sub(snippet, sql)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def service_files(service: str) -> Traversable:
    return resources.files(f"services.{service}")


def load_migrations(service: str) -> list[Migration]:
    folder = service_files(service) / "migrations"
    migrations = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, name = entry.name.removesuffix(".sql").partition("_")
        if not number.isdigit():
            raise MigrationError(f"{entry.name}: migration files are named NNNN_name.sql")
        sql = expand_includes(entry.read_text(), f"{service}/{entry.name}")
        migrations.append(Migration(int(number), name, sql))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{service}: two migrations share a version number")
    return migrations


def lock_key(service: str) -> int:
    digest = hashlib.blake2b(f"agora-migrate:{service}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def migrate(dsn: str, service: str, *, seed: bool = False) -> list[str]:
    """Apply what is missing; return the names applied (empty when up to date)."""
    migrations = load_migrations(service)
    applied_now: list[str] = []
    conn = await connect_with_retry(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key(service))
        await conn.execute(SCHEMA_TABLE)
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{service} migration {migration.version:04d}_{migration.name} was "
                        "changed after it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
        seed_file = service_files(service) / "seed.sql"
        if seed and seed_file.is_file():
            async with conn.transaction():
                await conn.execute(seed_file.read_text())
    finally:
        await conn.close()  # ends the session, which releases the advisory lock
    return applied_now


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agora-migrate", description=__doc__.split("\n")[0])
    parser.add_argument("service")
    parser.add_argument("--seed", action="store_true", help="load demo data into empty tables")
    args = parser.parse_args(argv)
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        print("configuration error: DATABASE_URL: is not set", file=sys.stderr)
        raise SystemExit(2)
    try:
        applied = asyncio.run(migrate(dsn, args.service, seed=args.seed))
    except MigrationError as error:
        print(f"migration error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    state = ", ".join(applied) if applied else "up to date"
    print(f"{args.service}: {state}{' (seeded)' if args.seed else ''}")


if __name__ == "__main__":
    main()

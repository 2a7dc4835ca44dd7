"""A private PostgreSQL server for devstack and the tests, bound to 127.0.0.1.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` system
user (Debian's postgresql package creates it) and its data directory is placed where
that user can reach it.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SERVER_USER = "postgres"


class PostgresMissing(RuntimeError):
    pass


def bindir() -> Path:
    """Where initdb and postgres live: PATH first, then Debian's versioned directories."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not versions:
        raise PostgresMissing(
            "PostgreSQL is not installed: run `make setup` as root, or apt-get install postgresql"
        )
    return Path(versions[-1]).parent


def running_as_root() -> bool:
    return os.geteuid() == 0


def as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if running_as_root() else command


def server_user_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(SERVER_USER)
    return entry.pw_uid, entry.pw_gid


def reachable_by_server_user(path: Path) -> bool:
    if not running_as_root():
        return True
    probe = subprocess.run(as_server_user(["test", "-x", str(path)]), check=False)
    return probe.returncode == 0


def data_dir_for(state_dir: Path) -> Path:
    """`state_dir/postgres`, or a stable place under /var/tmp when the server user
    cannot enter state_dir (a checkout under /root, say)."""
    preferred = state_dir / "postgres"
    if reachable_by_server_user(state_dir):
        return preferred
    tag = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"agora-postgres-{tag}"


def initdb(data_dir: Path) -> bool:
    """Create the cluster unless it exists; True when it was created now."""
    if (data_dir / "PG_VERSION").exists():
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    if running_as_root():
        uid, gid = server_user_ids()
        os.chown(data_dir, uid, gid)
    data_dir.chmod(0o700)
    subprocess.run(
        as_server_user(
            [
                str(bindir() / "initdb"),
                "--pgdata",
                str(data_dir),
                "--username",
                "postgres",
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return True


def server_command(
    data_dir: Path, port: int, socket_dir: Path, *, durable: bool = True
) -> list[str]:
    command = [
        str(bindir() / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"unix_socket_directories={socket_dir}",
        "-c",
        "max_connections=300",
    ]
    if not durable:  # throwaway test clusters: no reason to wait for the disk
        command += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    return command


def prepare_socket_dir(socket_dir: Path) -> None:
    socket_dir.mkdir(parents=True, exist_ok=True)
    if running_as_root():
        uid, gid = server_user_ids()
        os.chown(socket_dir, uid, gid)


@dataclass(frozen=True)
class Server:
    port: int
    socket_dir: Path

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}&port={self.port}"

    def dsn(self, database: str, password: str) -> str:
        return f"postgresql://{database}:{password}@127.0.0.1:{self.port}/{database}"


async def wait_ready(server: Server, patience: float = 30.0) -> None:
    deadline = time.monotonic() + patience
    while True:
        try:
            conn = await asyncpg.connect(server.admin_dsn, timeout=2)
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
        else:
            await conn.close()
            return


async def ensure_database(server: Server, name: str, password: str) -> str:
    """A role and a database named `name`, owned by it; idempotent. Returns its DSN."""
    conn = await asyncpg.connect(server.admin_dsn)
    try:
        role = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        quoted = f'"{name}"'
        literal = password.replace("'", "''")
        if role:
            await conn.execute(f"ALTER ROLE {quoted} WITH LOGIN PASSWORD '{literal}'")
        else:
            await conn.execute(f"CREATE ROLE {quoted} WITH LOGIN PASSWORD '{literal}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"CREATE DATABASE {quoted} OWNER {quoted}")
    finally:
        await conn.close()
    return server.dsn(name, password)


def new_password() -> str:
    return secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


@contextmanager
def temporary_server(port: int) -> Iterator[Server]:
    """A throwaway server for tests: created, started, and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="agora-pg-"))
    if running_as_root():
        uid, gid = server_user_ids()
        os.chown(root, uid, gid)
    data_dir, socket_dir = root / "data", root / "socket"
    process = None
    try:
        initdb(data_dir)
        prepare_socket_dir(socket_dir)
        with open(root / "server.log", "wb") as log:
            process = subprocess.Popen(
                as_server_user(server_command(data_dir, port, socket_dir, durable=False)),
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        server = Server(port, socket_dir)
        asyncio.run(wait_ready(server))
        yield server
    finally:
        if process is not None:
            stop_group(process)
        shutil.rmtree(root, ignore_errors=True)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGINT is PostgreSQL's fast shutdown; runuser passes it on to the server."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

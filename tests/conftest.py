"""Test servers shared by the suites: a private PostgreSQL on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from devstack import postgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    with postgres.temporary_server(free_port()) as server:
        yield server

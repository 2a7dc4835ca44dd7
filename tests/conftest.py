"""Shared by the suites: a private PostgreSQL on a free 127.0.0.1 port (unit tests),
and the client of the system under test through its ingress, AGORA_URL (integration
and fault tests)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import httpx
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


@pytest.fixture(scope="session")
def agora_url() -> str:
    url = os.environ.get("AGORA_URL")
    if not url:
        pytest.exit("AGORA_URL is not set: run these through `make integration`", returncode=2)
    return url.rstrip("/")


@pytest.fixture(scope="session")
def agora(agora_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agora_url, timeout=15) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A suffix that makes names from this test distinct from every other run's."""
    return uuid.uuid4().hex[:10]

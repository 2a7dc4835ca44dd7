"""Integration tests talk to the system only through its ingress: AGORA_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest


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

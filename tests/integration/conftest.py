"""Integration tests talk to the system only through its ingress: AGORA_URL (the
`agora` client and the other fixtures live in tests/conftest.py)."""

from collections.abc import Iterator

import httpx
import pytest

from .crawler_helpers import Crawl, open_crawl


@pytest.fixture(scope="module")
def crawl(agora: httpx.Client) -> Iterator[Crawl]:
    with open_crawl(agora) as opened:
        yield opened

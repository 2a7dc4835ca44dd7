from __future__ import annotations

import pytest

from services.crawler.checker import Checker, CheckerConfig
from services.crawler.guard import parse_networks
from tests.crawlsite import Running, SiteServers

from .netjail import StaticResolver, Tripwire, jail

LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.fixture(autouse=True)
def network_jail(monkeypatch):
    """Every crawler unit test: nothing leaves 127.0.0.0/8 and ::1, or the test fails."""
    with jail(monkeypatch) as state:
        yield state
    assert not state.violations, f"the network jail refused: {state.violations}"


@pytest.fixture
async def site() -> Running:
    servers = SiteServers()
    running = await servers.start()
    yield running
    await servers.stop()


@pytest.fixture
def tripwire() -> Tripwire:
    wire = Tripwire()
    yield wire
    assert not wire.escapes, f"connections the guard should have stopped: {wire.escapes}"


@pytest.fixture
async def make_checker(tripwire):
    """A started Checker (the loopback networks allowed unless told otherwise) whose
    resolver is a StaticResolver and whose sockets pass the tripwire."""
    started: list[Checker] = []

    async def make(
        records: dict[str, list[str]] | None = None, *, allowed=LOOPBACK, **config
    ) -> Checker:
        values = {"retries": 0, "backoff": 0.05, "connect_timeout": 2.0, **config}
        checker = Checker(
            CheckerConfig(allowed_networks=tuple(allowed), **values),
            resolver=StaticResolver(records),
            make_socket=tripwire,
        )
        await checker.start()
        started.append(checker)
        return checker

    yield make
    for checker in started:
        await checker.close()

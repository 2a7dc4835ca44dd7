"""SSRF: a check never connects where the policy forbids, in any spelling, by any path.

Every case here runs in the network jail and with the tripwire behind the guard (see
netjail.py): were the guard to let a forbidden connection through, the tripwire would
refuse it and fail the test, and nothing would leave the machine either way.
"""

from __future__ import annotations

import ipaddress

import pytest

from services.crawler.checker import CheckOptions
from services.crawler.guard import BLOCKED_NETWORKS, Policy, embedded_ipv4, parse_networks
from services.crawler.urls import normalize

OPTIONS = CheckOptions(timeout=2.0)

LITERALS = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.255.255.254:8080/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://3232235777/",  # 192.168.1.1
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # 169.254.169.254
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of it
    "http://[fd00::1]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fec0::1]/",
    "http://224.0.0.1/",
    "http://239.255.255.250:1900/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://[2001:db8::1]/",
    "http://[100::1]/",
    "https://127.0.0.1:8443/",
    "https://[::1]:443/",
]


@pytest.mark.parametrize("url", LITERALS)
async def test_ip_literals_in_every_form_are_blocked(make_checker, tripwire, url):
    checker = await make_checker(allowed=())
    result = await checker.check(normalize(url), OPTIONS)
    assert result.error_kind == "blocked", result
    assert result.status_code is None
    assert tripwire.attempts == []  # refused before any socket existed


NAMES = {
    "loopback.test": ["127.0.0.1"],
    "loopback6.test": ["::1"],
    "metadata.test": ["169.254.169.254"],
    "private.test": ["10.0.0.7"],
    "ula.test": ["fd12:3456::1"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::7f00:1"],
    # one forbidden record blocks the name: the public one is not tried either
    "mixed.test": ["93.184.216.34", "10.0.0.1"],
    "mixed6.test": ["2606:4700::1111", "fe80::1"],
}


@pytest.mark.parametrize("name", sorted(NAMES))
async def test_names_are_checked_after_resolution_every_record(make_checker, tripwire, name):
    checker = await make_checker(NAMES, allowed=())
    result = await checker.check(f"http://{name}/", OPTIONS)
    assert result.error_kind == "blocked", result
    assert name in result.error_detail
    assert tripwire.attempts == []


async def test_a_name_of_the_local_site_is_blocked_unless_loopback_is_allowed(
    make_checker, tripwire, site
):
    records = {"site.test": ["127.0.0.1"]}
    url = f"http://site.test:{site.port}/ok"
    blocked = await (await make_checker(records, allowed=())).check(url, OPTIONS)
    assert blocked.error_kind == "blocked"
    assert "127.0.0.1" in blocked.error_detail and "loopback" in blocked.error_detail
    assert site.site.hits == [] and tripwire.attempts == []

    allowed = await (await make_checker(records)).check(url, OPTIONS)  # 127.0.0.0/8 allowed
    assert allowed.error is None and allowed.status_code == 200
    assert [hit.path for hit in site.site.hits] == ["/ok"]
    assert tripwire.attempts == ["127.0.0.1"]


async def test_the_live_site_by_address_is_blocked_without_the_allowance(
    make_checker, tripwire, site
):
    checker = await make_checker(allowed=())
    for url in (site.url("/ok"), f"http://[::ffff:127.0.0.1]:{site.port}/ok"):
        result = await checker.check(normalize(url), OPTIONS)
        assert result.error_kind == "blocked"
    assert site.site.hits == [] and tripwire.attempts == []


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://2852039166/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00::1]:8080/",
        "http://metadata.test/",
        "http://mixed.test/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ],
)
async def test_a_public_looking_url_redirecting_to_a_private_one_is_blocked(
    make_checker, tripwire, site, target
):
    # "www.public.test" looks public; it is the local site, allowed for this test
    records = {**NAMES, "www.public.test": ["127.0.0.1"]}
    checker = await make_checker(records)
    url = normalize(f"http://www.public.test:{site.port}/redirect-to?url={target}")
    result = await checker.check(url, OPTIONS)
    assert result.error_kind == "blocked", result
    assert result.status_code == 302 and result.redirects == 1
    assert tripwire.attempts == ["127.0.0.1"]  # the first hop only


async def test_every_hop_is_checked_not_only_the_first(make_checker, tripwire, site):
    """Two harmless hops, then one to the metadata address."""
    checker = await make_checker()
    hop3 = "http://169.254.169.254/"
    hop2 = site.url(f"/redirect-to?url={hop3}")
    url = site.url(f"/redirect-to?url={hop2}")
    result = await checker.check(normalize(url), OPTIONS)
    assert result.error_kind == "blocked" and result.redirects == 2
    assert "169.254.169.254" in result.error_detail
    assert set(tripwire.attempts) == {"127.0.0.1"}  # the two hops on the local site only
    assert len(site.site.hits) == 2


async def test_a_redirect_target_in_a_legacy_spelling_is_normalized_and_followed(
    make_checker, site
):
    checker = await make_checker()
    target = f"http://2130706433:{site.port}/ok"
    result = await checker.check(site.url(f"/redirect-to?url={target}"), OPTIONS)
    assert result.error is None and result.status_code == 200
    assert result.final_url == f"http://127.0.0.1:{site.port}/ok"


async def test_proxies_from_the_environment_are_ignored(make_checker, tripwire, site, monkeypatch):
    for variable in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(variable, "http://10.9.9.9:3128")
    checker = await make_checker()
    result = await checker.check(site.url("/ok"), OPTIONS)
    assert result.status_code == 200
    assert tripwire.attempts == ["127.0.0.1"]


# ---------------------------------------------------------------- the policy itself


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8"],
)
def test_public_addresses_are_allowed(address):
    assert Policy().why_blocked(ipaddress.ip_address(address)) is None


def test_every_blocked_network_is_blocked_at_both_ends():
    policy = Policy()
    for network, _ in BLOCKED_NETWORKS:
        for address in (network[0], network[-1]):
            assert policy.why_blocked(address) is not None, address


def test_allowed_networks_are_the_one_exception_and_only_theirs():
    policy = Policy(parse_networks("127.0.0.0/8, 10.1.0.0/16"))
    allowed = ["127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "10.1.2.3"]
    for address in allowed:
        assert policy.why_blocked(ipaddress.ip_address(address)) is None, address
    for address in ["10.2.0.1", "::1", "169.254.169.254", "192.168.0.1"]:
        assert policy.why_blocked(ipaddress.ip_address(address)) is not None, address


def test_embedded_ipv4_addresses_are_unwrapped():
    cases = {
        "::ffff:10.0.0.1": "10.0.0.1",
        "64:ff9b::a9fe:a9fe": "169.254.169.254",
        "2002:c0a8:101::": "192.168.1.1",
        "2606:4700::1111": None,
    }
    for address, inner in cases.items():
        found = embedded_ipv4(ipaddress.ip_address(address))
        assert (None if found is None else str(found)) == inner


@pytest.mark.parametrize("text", ["127.0.0.1/8", "not-a-network", "10.0.0.0/33", "::1/129"])
def test_bad_allowed_networks_are_refused(text):
    with pytest.raises(ValueError, match="is not a network"):
        parse_networks(text)


# ---------------------------------------------------------------- the guard of the guard


async def test_the_tripwire_stops_what_a_broken_guard_lets_through(make_checker, tripwire):
    """With every network allowed the guard stops nothing: the tripwire must."""
    checker = await make_checker(allowed=parse_networks("0.0.0.0/0 ::/0"))
    result = await checker.check("http://10.20.30.40/", OPTIONS)
    assert result.error_kind == "connect" and "tripwire" in result.error_detail
    assert tripwire.escapes == ["10.20.30.40"]
    tripwire.escapes.clear()  # seen: this test made it happen on purpose


def test_the_jail_stops_any_other_connection_and_any_lookup(network_jail):
    import socket

    with socket.socket() as sock, pytest.raises(OSError, match="network jail"):
        sock.connect(("10.20.30.40", 80))
    with pytest.raises(OSError, match="network jail"):
        socket.getaddrinfo("example.com", 80)
    assert len(network_jail.violations) == 2
    network_jail.violations.clear()


async def test_loopback_only_holds_even_with_every_network_allowed(site, network_jail):
    """CRAWLER_LOOPBACK_ONLY (the test and bench stacks): its own check, apart from the
    policy, so a policy that allowed everything still reaches loopback only, and no
    name is ever looked up."""
    from services.crawler.checker import Checker, CheckerConfig
    from services.crawler.guard import NoLookups, loopback_socket

    config = CheckerConfig(allowed_networks=parse_networks("0.0.0.0/0 ::/0"), retries=0)
    async with Checker(config, resolver=NoLookups(), make_socket=loopback_socket) as checker:
        for url in ("http://10.20.30.40/", "http://[2606:4700::1111]/", "http://93.184.216.34/"):
            result = await checker.check(url, OPTIONS)
            assert result.error_kind == "blocked", result
            assert "CRAWLER_LOOPBACK_ONLY" in result.error_detail
        named = await checker.check("http://example.com/", OPTIONS)
        assert named.error_kind == "dns" and "not resolved" in named.error_detail
        for url in (site.url("/ok"), f"http://[::ffff:127.0.0.1]:{site.port}/ok"):
            assert (await checker.check(normalize(url), OPTIONS)).status_code == 200
    assert network_jail.violations == []


async def test_the_jail_holds_for_the_event_loop_and_the_workers_own_checker(network_jail):
    """What a worker runs (aiohttp's ThreadedResolver, plain sockets: no test resolver, no
    tripwire) with a guard that allows everything: the event loop's connects and lookups
    still reach the jail, which refuses and records them. So a guard bug in test_worker's
    workers shows as a failed test, never as a packet."""
    import asyncio
    import socket

    from services.crawler.checker import Checker, CheckerConfig

    loop = asyncio.get_running_loop()
    with socket.socket() as sock, pytest.raises(OSError, match="network jail"):
        sock.setblocking(False)
        await loop.sock_connect(sock, ("10.20.30.40", 80))
    with pytest.raises(OSError, match="network jail"):
        await loop.getaddrinfo("example.com", 80)
    with pytest.raises(OSError, match="network jail"):
        await loop.create_connection(asyncio.Protocol, "192.168.1.1", 80)
    assert len(network_jail.violations) == 3

    config = CheckerConfig(allowed_networks=parse_networks("0.0.0.0/0 ::/0"), retries=0)
    async with Checker(config) as checker:
        literal = await checker.check("http://10.20.30.40/", OPTIONS)
        named = await checker.check("http://example.com/", OPTIONS)
    assert literal.error_kind == "connect" and "network jail" in literal.error_detail
    assert named.error_kind == "dns" and "network jail" in named.error_detail
    assert network_jail.violations[3:] == [
        "connect to ('10.20.30.40', 80)",
        "name lookup of 'example.com'",
    ]
    network_jail.violations.clear()  # seen: this test made them happen on purpose

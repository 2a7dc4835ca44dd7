"""SSRF: the addresses a URL check may connect to, enforced where connections are made.

A check never reaches a loopback, private, shared (CGNAT), link-local (cloud metadata at
169.254.169.254 included), unspecified, multicast, documentation, benchmarking or
otherwise reserved address (BLOCKED_NETWORKS), unless the operator allows a network with
CRAWLER_ALLOWED_NETWORKS, the one way to allow one. IPv6 addresses that carry an IPv4
address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by
the IPv4 address they carry.

The policy is applied three times, so no path around one check reaches the network:
- GuardedResolver: after DNS resolution, every A/AAAA record; one forbidden record blocks
  the host (a name that resolves to a public and a private address is not checked);
- the checker, for hosts that are IP literals (aiohttp does not resolve those) and for
  every redirect target before it is requested;
- guarded_socket_factory: the address of every socket aiohttp connects, whatever
  resolved it.
A blocked check sends nothing; its result is {"kind": "blocked"}.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AddrInfo = tuple[int, int, int, str, tuple]
SocketFactory = Callable[[AddrInfo], socket.socket]


def _networks(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), why) for cidr, why in rows)


# IANA's special-purpose registries (RFC 6890 and successors): nothing here is a public
# web server. Python's own is_global is not used: before 3.12 it calls ::7f00:1 global.
BLOCKED_NETWORKS = _networks(
    [
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (cloud metadata lives here)"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "an IPv4-compatible (deprecated) address"),
        ("64:ff9b:1::/48", "a local NAT64 address"),
        ("100::/64", "a discard address"),
        ("2001::/23", "an IETF protocol address (Teredo, ORCHID, documentation...)"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment routing address"),
        ("fc00::/7", "a unique local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local (deprecated) address"),
        ("ff00::/8", "a multicast address"),
    ]
)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


MARK = "blocked: "  # how a BlockedAddress reads inside aiohappyeyeballs' combined OSError


class BlockedAddress(OSError):
    """A connection the policy forbids; raised before anything is sent."""

    def __init__(self, host: str, address: str, why: str) -> None:
        shown = address if host == address else f"{host} resolves to {address}, which"
        self.reason = f"{shown} is {why}"
        super().__init__(MARK + self.reason)
        self.host = host
        self.address = address
        self.why = why


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """CRAWLER_ALLOWED_NETWORKS: CIDRs separated by commas or spaces (a bare address is
    a /32 or /128); ValueError naming a bad one (host bits set included: 127.0.0.1/8)."""
    networks = []
    for item in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as error:
            raise ValueError(f"{item!r} is not a network: {error}") from None
    return tuple(networks)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped, NAT64 or 6to4."""
    if address.version != 6:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


class Policy:
    """Which addresses checks may reach: none of BLOCKED_NETWORKS unless allowed."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        self.allowed = tuple(allowed)

    def why_blocked(self, address: IPAddress) -> str | None:
        """None when `address` may be reached, else what it is."""
        if any(
            address in network for network in self.allowed if network.version == address.version
        ):
            return None
        inner = embedded_ipv4(address)
        if inner is not None:
            why = self.why_blocked(inner)
            return None if why is None else f"{why}, carried in {address.compressed}"
        for network, why in BLOCKED_NETWORKS:
            if network.version == address.version and address in network:
                return f"{why} ({network})"
        return None

    def check(self, host: str, address: str | IPAddress) -> None:
        """Raise BlockedAddress unless `address` (of `host`) may be reached."""
        if isinstance(address, str):
            try:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError:
                raise BlockedAddress(host, address, "not an IP address") from None
        else:
            ip = address
        why = self.why_blocked(ip)
        if why is not None:
            raise BlockedAddress(host, ip.compressed, why)


class GuardedResolver(AbstractResolver):
    """A resolver that refuses a host if any of its addresses is forbidden."""

    def __init__(self, inner: AbstractResolver, policy: Policy) -> None:
        self.inner = inner
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            self.policy.check(host, result["host"])
        return results

    async def close(self) -> None:
        await self.inner.close()


def plain_socket(addr_info: AddrInfo) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    return socket.socket(family=family, type=type_, proto=proto)


def guarded_socket_factory(policy: Policy, make: SocketFactory | None = None) -> SocketFactory:
    """aiohttp's socket_factory: the address of every connection checked last, then the
    socket made by `make` (a plain one; tests pass one that records each attempt)."""
    make = make or plain_socket

    def make_socket(addr_info: AddrInfo) -> socket.socket:
        address = str(addr_info[4][0])
        policy.check(address, address)
        return make(addr_info)

    return make_socket


# ---------------------------------------------------------------- CRAWLER_LOOPBACK_ONLY
#
# For the stacks that tests and benchmarks run (devstack's test and bench stacks set it),
# where anything may be submitted (a fuzzer's URLs, say) and nothing may leave the
# machine: sockets to 127.0.0.0/8 and ::1 only, and no name is ever looked up. Deliberately
# apart from Policy (other code, Python's own is_loopback): were the policy wrong, this
# still holds.

LOOPBACK_ONLY = "not a loopback address, and CRAWLER_LOOPBACK_ONLY is set"


def loopback_socket(addr_info: AddrInfo) -> socket.socket:
    address = str(addr_info[4][0])
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    inner = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if not (ip.is_loopback or (inner is not None and inner.is_loopback)):
        raise BlockedAddress(address, address, LOOPBACK_ONLY)
    return plain_socket(addr_info)


class NoLookups(AbstractResolver):
    """A resolver that resolves nothing: not one DNS query is sent."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, f"{host}: names are not resolved (CRAWLER_LOOPBACK_ONLY)")

    async def close(self) -> None:
        pass


def blocked_reason(error: BaseException | None) -> str | None:
    """What was blocked, when a BlockedAddress is behind an error aiohttp raised (it
    wraps OSErrors, and aiohappyeyeballs folds several into one message)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for candidate in (error, getattr(error, "os_error", None)):
            if isinstance(candidate, BlockedAddress):
                return candidate.reason
            if candidate is not None and MARK in str(candidate):
                return str(candidate).replace(MARK, "")
        error = error.__cause__ or error.__context__
    return None

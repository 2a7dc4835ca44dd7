"""The guard of the guard: no crawler unit test can reach anything beyond this machine.

Every test under tests/unit/crawler runs inside `jail()` (an autouse fixture): socket
connects and datagrams to any address outside 127.0.0.0/8 and ::1, and every name lookup
but of loopback literals and "localhost", are refused (an OSError, before the kernel sees
anything) and recorded; a test that attempted one fails, even when the code under test
swallowed the error. So a bug in the SSRF guard shows as a failed test, never as a packet.

`StaticResolver` is the DNS the checker is given in tests (names resolve to what a test
says, unknown names fail like NXDOMAIN: real DNS is never asked), and `Tripwire` the
socket maker behind the guard: it records every connection the guard let through, and
refuses any that is not loopback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult

LOCAL_NAMES = {"localhost", "localhost.", "ip6-localhost"}


def is_loopback(text: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped ::ffff:127.x.y.z (which is 127.x.y.z)."""
    ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def is_local_address(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths, abstract sockets
        return True
    try:
        return is_loopback(str(address[0]))
    except ValueError:
        return False


def is_local_name(host: object) -> bool:
    if host is None:
        return True  # a passive lookup (binding), no name to resolve
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() in LOCAL_NAMES:
        return True
    try:
        return is_loopback(text)
    except ValueError:
        return False


class Escape(OSError):
    """A connection or lookup the jail refused."""


@dataclass
class Jail:
    violations: list[str] = field(default_factory=list)

    def refuse(self, what: str) -> Escape:
        self.violations.append(what)
        return Escape(f"network jail: {what} refused (tests reach only 127.0.0.0/8 and ::1)")


@contextlib.contextmanager
def jail(monkeypatch) -> Iterator[Jail]:
    state = Jail()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not is_local_address(address):
            raise state.refuse(f"connect to {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not is_local_address(address):
            raise state.refuse(f"connect_ex to {address}")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        address = args[-1]
        if not is_local_address(address):
            raise state.refuse(f"datagram to {address}")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not is_local_name(host):
            raise state.refuse(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def lookup(host, *args, **kwargs):
        raise state.refuse(f"name lookup of {host!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        monkeypatch.setattr(socket, name, lookup)
    yield state


class StaticResolver(AbstractResolver):
    """A test's DNS: `records` maps names to addresses; anything else does not exist."""

    def __init__(self, records: dict[str, list[str]] | None = None) -> None:
        self.records = {
            name.lower(): list(addresses) for name, addresses in (records or {}).items()
        }
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        addresses = self.records.get(host.lower().rstrip("."))
        if not addresses:
            raise OSError(socket.EAI_NONAME, f"{host}: Name or service not known")
        results: list[ResolveResult] = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            results.append(
                {
                    "hostname": host,
                    "host": ip.compressed,
                    "port": port,
                    "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        pass


@dataclass
class Tripwire:
    """Makes the sockets the guard approved: records each attempt, refuses non-loopback."""

    attempts: list[str] = field(default_factory=list)
    escapes: list[str] = field(default_factory=list)

    def __call__(self, addr_info) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        self.attempts.append(address)
        if not is_local_address(sockaddr):
            self.escapes.append(address)
            raise Escape(f"tripwire: the guard let a connection to {address} through")
        return socket.socket(family=family, type=type_, proto=proto)

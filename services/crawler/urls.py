"""Submitted URLs: what is accepted, and the one normal form a URL is stored and compared in.

A URL is accepted when it is http or https, has a host that is a valid DNS name or an IP
address, a port from 1 to 65535, no user name or password (a checker never sends
credentials), no whitespace or control characters, and at most MAX_URL_LENGTH characters.
It is normalized the way a browser does: scheme and host in lower case, an IDN host in
its ASCII (punycode) form, the IPv4 spellings inet_aton accepts (2130706433, 0x7f.1,
0177.0.0.1) as dotted quads, the default port dropped, the fragment (never sent) dropped,
an empty path as "/". Two submitted URLs with the same normal form are one URL.

Whether the address behind a URL may be checked is not decided here but by the worker,
after resolution (services.crawler.guard): a URL of a loopback address is valid, and its
result says "blocked".
"""

from __future__ import annotations

import ipaddress
import re

from yarl import URL

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


class InvalidUrl(ValueError):
    """Why a URL is not accepted (the message is shown to the caller)."""


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address of a host written in one of inet_aton's forms (one to four parts,
    each decimal, octal with a leading 0, or hexadecimal with 0x), as the WHATWG URL
    standard reads them; None when the host is a name. A host whose last label is a
    number but that is no valid address (256.1.1.1) is an InvalidUrl."""
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # a trailing dot
    if not parts or not _is_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise InvalidUrl(f"host {host!r} is not a valid IPv4 address")
    try:
        numbers = [_number(part) for part in parts]
    except ValueError:
        raise InvalidUrl(f"host {host!r} is not a valid IPv4 address") from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise InvalidUrl(f"host {host!r} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _is_number(part: str) -> bool:
    if part[:2].lower() == "0x":
        return all(c in "0123456789abcdefABCDEF" for c in part[2:])
    return part.isascii() and part.isdigit()


def _number(part: str) -> int:
    if part == "":
        raise ValueError("empty part")
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part, 10)


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally (any IPv4 form, or IPv6 with or without
    brackets and zone), or None for a DNS name."""
    bare = host.strip("[]")
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare.split("%", 1)[0])
        except ValueError:
            raise InvalidUrl(f"host {host!r} is not a valid IPv6 address") from None
    return parse_ipv4_number(bare)


def canonical_host(raw_host: str) -> str:
    """The host in its normal form (lower case, punycode, IPv4 dotted, IPv6 compressed
    in brackets); InvalidUrl when it is neither a DNS name nor an address."""
    host = raw_host.lower()
    literal = ip_literal(host)
    if literal is not None:
        return f"[{literal.compressed}]" if literal.version == 6 else str(literal)
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise InvalidUrl(f"host {raw_host!r} is not a valid host name")
    return name


def normalize(text: object) -> str:
    """The normal form of a submitted URL; InvalidUrl saying why it is not accepted."""
    if not isinstance(text, str):
        raise InvalidUrl("must be a string")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidUrl(f"is longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN.search(text):
        raise InvalidUrl("must not contain whitespace or control characters")
    try:
        url = URL(text)
    except (ValueError, TypeError) as error:
        raise InvalidUrl(f"is not a URL ({error})") from None
    return str(normalize_url(url))


def normalize_url(url: URL) -> URL:
    """The normal form of a parsed URL (submitted, or the target of a redirect)."""
    if url.scheme not in SCHEMES:
        shown = f"{url.scheme!r}" if url.scheme else "none"
        raise InvalidUrl(f"scheme must be http or https, not {shown}")
    if not url.raw_host:
        raise InvalidUrl("has no host")
    if url.raw_user is not None or url.raw_password is not None:
        raise InvalidUrl("must not contain a user name or password")
    try:
        port = url.explicit_port
    except ValueError:
        raise InvalidUrl("has an invalid port") from None
    if port is not None and not 0 < port <= 65535:
        raise InvalidUrl("port must be from 1 to 65535")
    host = canonical_host(url.raw_host)
    default = 443 if url.scheme == "https" else 80
    authority = host if port in (None, default) else f"{host}:{port}"
    path = url.raw_path or "/"
    query = f"?{url.raw_query_string}" if url.raw_query_string else ""
    normal = f"{url.scheme}://{authority}{path}{query}"
    if len(normal) > MAX_URL_LENGTH:
        raise InvalidUrl(f"is longer than {MAX_URL_LENGTH} characters once normalized")
    return URL(normal, encoded=True)

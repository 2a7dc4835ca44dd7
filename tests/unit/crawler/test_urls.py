"""What a submitted URL may be, and the one form it is stored and compared in."""

from __future__ import annotations

import ipaddress

import pytest

from services.crawler.urls import MAX_URL_LENGTH, InvalidUrl, normalize, parse_ipv4_number

ACCEPTED = [
    ("http://example.com", "http://example.com/"),
    ("HTTPS://Example.COM:443/a?b=1#frag", "https://example.com/a?b=1"),
    ("http://example.com:8080/x", "http://example.com:8080/x"),
    ("http://example.com./", "http://example.com/"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/"),
    ("http://h/?q", "http://h/?q"),
    ("http://under_score.example/", "http://under_score.example/"),
    # IPv4 in every spelling inet_aton accepts becomes a dotted quad
    ("http://127.0.0.1/", "http://127.0.0.1/"),
    ("http://2130706433/", "http://127.0.0.1/"),
    ("http://0x7f000001/", "http://127.0.0.1/"),
    ("http://0177.0.0.1/", "http://127.0.0.1/"),
    ("http://0x7f.1/", "http://127.0.0.1/"),
    ("http://127.1/", "http://127.0.0.1/"),
    ("http://10.1.65535/", "http://10.1.255.255/"),
    ("http://0/", "http://0.0.0.0/"),
    ("http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/meta-data/"),
    # IPv6, compressed, in brackets; the zone is dropped
    ("http://[::1]:80/", "http://[::1]/"),
    ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
    ("http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/"),
    ("http://[FE80::1%25eth0]/", "http://[fe80::1]/"),
]

REFUSED = [
    ("ftp://example.com/", "scheme must be http or https"),
    ("file:///etc/passwd", "scheme must be http or https"),
    ("javascript:alert(1)", "scheme must be http or https"),
    ("//example.com/", "scheme must be http or https, not none"),
    ("example.com", "scheme must be http or https"),
    ("http:///path", "has no host"),
    ("http://", "has no host"),
    ("http://user:secret@example.com/", "user name or password"),
    ("http://user@example.com/", "user name or password"),
    ("http://example.com:0/", "port must be from 1 to 65535"),
    ("http://example.com:65536/", "is not a URL"),
    ("http://exa mple.com/", "whitespace or control characters"),
    ("http://example.com/\n", "whitespace or control characters"),
    ("http://example.com/\x00", "whitespace or control characters"),
    ("http://-bad.example/", "not a valid host name"),
    ("http://a..b/", "not a valid host name"),
    ("http://" + "a" * 64 + ".example/", "not a valid host name"),
    ("http://256.1.1.1/", "not a valid IPv4 address"),
    ("http://1.2.3.4.5/", "not a valid IPv4 address"),
    ("http://0x100.1.1.1/", "not a valid IPv4 address"),
    ("http://1.2.3.09/", "not a valid IPv4 address"),
    ("http://[::1/", "is not a URL"),
    ("http://example.com/" + "a" * MAX_URL_LENGTH, f"longer than {MAX_URL_LENGTH}"),
]


@pytest.mark.parametrize(("submitted", "normal"), ACCEPTED)
def test_accepted_urls_take_their_normal_form(submitted, normal):
    assert normalize(submitted) == normal
    assert normalize(normal) == normal  # normalizing twice changes nothing


@pytest.mark.parametrize(("submitted", "why"), REFUSED)
def test_refused_urls_say_why(submitted, why):
    with pytest.raises(InvalidUrl, match=why.replace("(", r"\(")):
        normalize(submitted)


@pytest.mark.parametrize("value", [None, 7, ["http://x/"], {"url": "http://x/"}])
def test_a_url_is_a_string(value):
    with pytest.raises(InvalidUrl, match="must be a string"):
        normalize(value)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("1.2.3.4.", "1.2.3.4"),
        ("4294967295", "255.255.255.255"),
    ],
)
def test_inet_aton_forms_are_read_as_addresses(host, address):
    assert parse_ipv4_number(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.example", "localhost", "0x7f.example"])
def test_names_are_not_addresses(host):
    assert parse_ipv4_number(host) is None


def test_an_address_out_of_range_is_invalid():
    with pytest.raises(InvalidUrl):
        parse_ipv4_number("4294967296")

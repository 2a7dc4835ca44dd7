"""If-None-Match matching (RFC 9110 13.1.2: weak comparison for GET) and the tag itself."""

from __future__ import annotations

import pytest

from services.kit.caching import etag_of, none_match

TAG = etag_of(b'{"id":1}')


def test_the_tag_follows_the_bytes():
    assert etag_of(b'{"id":1}') == TAG
    assert etag_of(b'{"id":2}') != TAG
    assert TAG.startswith('"') and TAG.endswith('"') and "," not in TAG


@pytest.mark.parametrize("header", [TAG, f"W/{TAG}", f' "x", {TAG} ', "*", " * "])
def test_matches(header):
    assert none_match(header, TAG)


@pytest.mark.parametrize("header", ['"x"', "", TAG.strip('"'), f'W/"x", "{TAG}"'])
def test_does_not_match(header):
    assert not none_match(header, TAG)

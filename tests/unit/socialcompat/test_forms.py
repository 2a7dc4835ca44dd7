"""socialcompat's reading of DeathStarBench's requests and its shape of their answers."""

from __future__ import annotations

import jsonschema_rs
import pytest

from services.kit.errors import ApiError
from services.socialcompat.forms import Incomplete, check, integer, parse_form, require
from services.socialcompat.translate import dsb_post, media_of, users_in
from services.socialcompat.views import (
    COMPOSE_FIELDS,
    FOLLOW_FIELDS,
    READ_FIELDS,
    REGISTER_FIELDS,
)

# What mixed-workload.lua sends: nothing percent-encoded.
RAW_COMPOSE = (
    b"username=username_3&user_id=3&text=Ab9 @username_7 http://abc/def:x"
    b'&media_ids=["123456789012345678","1"]&media_types=["png","png"]&post_type=0'
)


def test_an_unencoded_body_keeps_its_spaces_at_signs_colons_and_slashes():
    args = parse_form(RAW_COMPOSE)
    assert args["text"] == "Ab9 @username_7 http://abc/def:x"
    assert args["username"] == "username_3" and args["post_type"] == "0"
    assert media_of(args["media_ids"], args["media_types"]) == [
        {"id": 123456789012345678, "type": "png"},
        {"id": 1, "type": "png"},
    ]


def test_an_encoded_body_reads_the_same():
    args = parse_form(b"text=Ab9+%40username_7%20http%3A%2F%2Fabc&user_id=3")
    assert args["text"] == "Ab9 @username_7 http://abc"


@pytest.mark.parametrize("body", [b"", b"user_id=3", b"user_id=3&username=&text=x&post_type=0"])
def test_a_missing_or_empty_argument_is_incomplete(body):
    with pytest.raises(Incomplete) as raised:
        require(parse_form(body), "user_id", "username", "text", "post_type")
    assert (raised.value.status, raised.value.message) == (400, "Incomplete arguments")


@pytest.mark.parametrize("value", ["-1", "x", "1.5", " 3", "9223372036854775808", "٣"])
def test_ids_are_digits_in_range(value):
    with pytest.raises(ApiError) as raised:
        integer({"user_id": value}, "user_id", 0, 2**63 - 1)
    assert raised.value.status == 400
    assert integer({"user_id": "9223372036854775807"}, "user_id", 0, 2**63 - 1) == 2**63 - 1


@pytest.mark.parametrize(
    ("ids", "types", "status"),
    [('["1"]', '["png","png"]', 422), ("[1", '["png"]', 400), ('["x"]', '["png"]', 400),
     ('{"a": 1}', "[]", 400)],
)  # fmt: skip
def test_bad_media_is_refused(ids, types, status):
    """Malformed: a 400; well formed but not one type per id (no schema relates the two
    arguments): a 422."""
    with pytest.raises(ApiError) as raised:
        media_of(ids, types)
    assert raised.value.status == status


def test_media_absent_or_half_given_is_none():
    assert media_of(None, None) == [] and media_of("", "") == [] and media_of('["1"]', "") == []


def test_a_post_in_deathstarbenchs_shape_field_by_field():
    post = {
        "id": 1873210327040,
        "author": {"id": 11, "username": "username_3"},
        "text": "hi @username_7 http://127.0.0.1/s/abcdefghijk",
        "mentions": [{"id": 15, "username": "username_7"}, {"id": 99, "username": "native"}],
        "hashtags": [],
        "urls": [{"short": "http://127.0.0.1/s/abcdefghijk", "original": "http://x.y/z"}],
        "media": [{"id": 123456789012345678, "type": "png"}],
        "reply_to": None,
        "kind": "reply",
        "created_at": "2026-12-01T13:00:00.123000+00:00",
    }
    assert users_in([post]) == [11, 15, 99]
    assert dsb_post(post, {11: 3, 15: 7, 99: None}) == {
        "post_id": "1873210327040",
        "creator": {"user_id": "3", "username": "username_3"},
        "req_id": "1873210327040",
        "text": post["text"],
        "user_mentions": [
            {"user_id": "7", "username": "username_7"},
            {"user_id": "-99", "username": "native"},
        ],
        "media": [{"media_id": "123456789012345678", "media_type": "png"}],
        "urls": [
            {"shortened_url": "http://127.0.0.1/s/abcdefghijk", "expanded_url": "http://x.y/z"}
        ],
        "timestamp": "1796130000123",
        "post_type": 2,
    }


@pytest.mark.parametrize(
    ("fields", "name", "value"),
    [
        (fields, name, value)
        for fields in (REGISTER_FIELDS, COMPOSE_FIELDS, FOLLOW_FIELDS, READ_FIELDS)
        for name in fields
        for value in ("", "0", "00", "7", "9223372036854775807", "9223372036854775808",
                      "username_1", "ab", "a*b", " x ", "\x01x", "x" * 99, "x" * 100,
                      "password 1", "1000", "1001", "3", "4", '["1","2"]', '["png"]',
                      '["012345678901234567","9"]',
                      '["1",]', "[]", "hello @username_2 http://x.y/z")
    ],
)  # fmt: skip
def test_an_argument_is_accepted_exactly_when_its_document_allows_it(fields, name, value):
    """check() and the document (with jsonschema_rs, schemathesis' validator) agree."""
    schema = {"type": "object", "properties": {name: fields[name]}}
    allowed = jsonschema_rs.validator_for(schema).is_valid({name: value})
    try:
        check({name: value}, fields)
        accepted = True
    except ApiError:
        accepted = False
    assert accepted is allowed


def test_media_ids_as_deathstarbench_sends_them_are_accepted():
    """18 random digits, so sometimes with a leading zero (mixed-workload.lua)."""
    check({"media_ids": '["012345678901234567","000000000000000001"]'}, COMPOSE_FIELDS)
    assert media_of('["012345678901234567"]', '["png"]') == [
        {"id": 12345678901234567, "type": "png"}
    ]

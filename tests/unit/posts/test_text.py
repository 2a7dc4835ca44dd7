"""What a post's text holds: URLs, mentions and hashtags (services/posts/text.py)."""

from __future__ import annotations

import itertools

import pytest

from services.posts import text


def shorten(body: str) -> text.Shortened:
    codes = (f"c{n}" for n in itertools.count())
    return text.shorten(body, lambda code: f"/s/{code}", codes)


@pytest.mark.parametrize(
    ("written", "url"),
    [
        ("see https://example.com/a?b=1.", "https://example.com/a?b=1"),
        (
            "(https://en.wikipedia.org/wiki/Cat_(disambiguation))",
            "https://en.wikipedia.org/wiki/Cat_(disambiguation)",
        ),
        ("(see http://example.com)", "http://example.com"),
        ("HTTPS://EXAMPLE.COM/X!", "HTTPS://EXAMPLE.COM/X"),
        ("at http://[::1]:8080/x, then", "http://[::1]:8080/x"),
        ('"https://example.com/q"', "https://example.com/q"),
        ("https://example.com/#frag;", "https://example.com/#frag"),
    ],
)
def test_a_url_ends_where_a_reader_would_say(written, url):
    found = shorten(written)
    assert found.links == [("c0", url)]
    assert found.text == written.replace(url, "/s/c0")


@pytest.mark.parametrize(
    "written", ["http://", "https:// x", "ftp://example.com", "http://:80/x", "http://a:99999/"]
)
def test_what_is_not_an_http_url_stays_text(written):
    found = shorten(written)
    assert found.links == [] and found.text == written


def test_every_url_gets_its_own_code_even_when_repeated():
    found = shorten("https://a.example https://a.example http://b.example")
    assert found.text == "/s/c0 /s/c1 /s/c2"
    assert [url for _, url in found.links] == ["https://a.example"] * 2 + ["http://b.example"]


def test_mentions_are_candidates_in_order_without_repeats():
    words = shorten("@Ana hi @bob. and @ana, not a@b.com nor @x nor x@ana; @cy.d.").words
    assert text.mention_candidates(words) == ["ana", "bob.", "bob", "cy.d.", "cy.d"]


def test_a_mention_takes_the_longest_spelling_that_names_a_user():
    words = shorten("@bob. @cy.d @nobody @ANA").words
    known = {
        "bob": {"id": 2, "username": "bob"},
        "cy.d": {"id": 3, "username": "cy.d"},
        "ana": {"id": 1, "username": "Ana"},
    }
    assert text.mentioned(words, known) == [
        {"id": 2, "username": "bob"},
        {"id": 3, "username": "cy.d"},
        {"id": 1, "username": "Ana"},
    ]


def test_mentions_inside_urls_are_not_mentions():
    words = shorten("https://example.com/@ana #x https://example.com/#tag").words
    assert text.mention_candidates(words) == [] and text.hashtags(words) == ["x"]


def test_hashtags_are_casefolded_in_order_without_digits_only_ones():
    words = shorten("#Cats and #cats #2024 #año_nuevo #Straße a#b &#38; ##x").words
    assert text.hashtags(words) == ["cats", "año_nuevo", "strasse"]


def test_at_most_a_hundred_names_are_looked_up():
    words = shorten(" ".join(f"@user{n:03}" for n in range(150))).words
    assert len(text.mention_candidates(words)) == text.MAX_MENTIONS


def test_codes_are_long_and_random():
    codes = {text.new_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert all(
        len(code) == 11 and code.replace("-", "").replace("_", "").isalnum() for code in codes
    )

"""What a post's text holds: its URLs (each replaced by a short link) and #hashtags.
Plain functions over strings; @mentions are services.kit.mentions' (comments have them too)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

# Mentions are the kit's (comments have them too); named here as well, as part of a post's text.
from services.kit.mentions import MAX_MENTIONS, mention_candidates, mentioned  # noqa: F401

# An http(s) URL runs to the next whitespace or character a URL never holds unescaped;
# punctuation that ends a sentence is not part of it, nor a closing bracket it never opened.
_URL = re.compile(r"https?://[^\s<>\"'`\x00-\x1f\x7f]+", re.IGNORECASE)
_TRAILING = ".,;:!?*'\""
_PAIRS = {")": "(", "]": "[", "}": "{"}
# #hashtag: word characters (any script), not all digits, at most 100.
_HASHTAG = re.compile(r"(?<![\w#&])#(\w{1,100})(?!\w)")
CODE_BYTES = 8  # 64 random bits: 11 characters of base64url


def new_code() -> str:
    """A short code nobody can guess: 64 bits from the operating system's CSPRNG."""
    return secrets.token_urlsafe(CODE_BYTES)


def _trim_url(candidate: str) -> str:
    while candidate:
        last = candidate[-1]
        unopened = last in _PAIRS and candidate.count(last) > candidate.count(_PAIRS[last])
        if not (last in _TRAILING or unopened):
            break
        candidate = candidate[:-1]
    return candidate


def _is_url(candidate: str) -> bool:
    try:
        parts = urlsplit(candidate)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:  # a bad port, an unbalanced IPv6 bracket
        return False
    return bool(parts.hostname)


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    url: str


def find_urls(text: str) -> list[Found]:
    found = []
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        if _is_url(url):
            found.append(Found(match.start(), match.start() + len(url), url))
    return found


@dataclass(frozen=True)
class Shortened:
    text: str  # every URL replaced by its short link
    links: list[tuple[str, str]]  # (code, original URL), in order
    words: list[str]  # the text outside the URLs, where mentions and hashtags are looked for


def shorten(text: str, short_link: Callable[[str], str], codes: Iterator[str]) -> Shortened:
    """The text with each URL replaced by short_link(code), a new code for each."""
    pieces, words, links = [], [], []
    position = 0
    for found in find_urls(text):
        code = next(codes)
        words.append(text[position : found.start])
        pieces += [text[position : found.start], short_link(code)]
        links.append((code, found.url))
        position = found.end
    pieces.append(text[position:])
    words.append(text[position:])
    return Shortened("".join(pieces), links, words)


def hashtags(words: list[str]) -> list[str]:
    """The #hashtags, lower case (casefolded), without '#', in order, repeats dropped."""
    tags: dict[str, None] = {}
    for piece in words:
        for match in _HASHTAG.finditer(piece):
            tag = match.group(1)
            if not tag.isdigit():
                tags[tag.casefold()] = None
    return list(tags)

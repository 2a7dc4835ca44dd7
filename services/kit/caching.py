"""Conditional GETs of single resources: ETag, If-None-Match -> 304, Cache-Control.

A route declared with `cache=` (its Cache-Control) answers with an ETag computed from
the representation's bytes, so the validator changes exactly when the answer does
(any column: updated_at, price, stock), for every resource alike, without a version
column. A request whose If-None-Match names the current ETag (or `*`) gets 304 Not
Modified with no body: the handler still reads the row, and only the bytes are spared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from hashlib import blake2b
from typing import Any

from aiohttp import web
from multidict import istr

from .headers import header_schema, header_value

Handler = Callable[..., Awaitable[web.StreamResponse]]
ETAG = istr("ETag")
IF_NONE_MATCH = istr("If-None-Match")
CACHE_CONTROL = istr("Cache-Control")
# What catalog-like resources say: a client (or a shared cache) may keep the answer but
# must revalidate it before each use, since price and stock change at any time.
REVALIDATE = "no-cache"
# A person's own data (a user, an order): the same, in their client only, never a shared cache.
PRIVATE_REVALIDATE = "private, no-cache"
# If-None-Match is checked as its OpenAPI schema says (printable ASCII, a few dozen tags
# at most): anything else is a 400, as for every documented header.
MAX_IF_NONE_MATCH = 1000
IF_NONE_MATCH_SCHEMA = header_schema(MAX_IF_NONE_MATCH)


def etag_of(body: bytes) -> str:
    """A strong entity tag: 128 bits of BLAKE2b over the exact bytes sent."""
    return f'"{blake2b(body, digest_size=16).hexdigest()}"'


def none_match(header: str, etag: str) -> bool:
    """If-None-Match names this ETag: `*`, or a list of tags compared weakly (W/ aside),
    as RFC 9110 13.1.2 says for GET."""
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def conditional(handler: Handler, cache_control: str) -> Handler:
    """The handler, answering 200s with ETag and Cache-Control, 304 when not modified."""

    async def conditional_get(request: web.Request, **kwargs: Any) -> web.StreamResponse:
        if_none_match = header_value(request, IF_NONE_MATCH, MAX_IF_NONE_MATCH)
        response = await handler(request, **kwargs)
        if response.status != 200 or not isinstance(response, web.Response):
            return response
        body = response.body
        if not isinstance(body, bytes):
            return response
        etag = etag_of(body)
        validators = {ETAG: etag, CACHE_CONTROL: cache_control}
        if if_none_match is not None and none_match(if_none_match, etag):
            return web.Response(status=304, headers=validators)
        response.headers.update(validators)
        return response

    conditional_get.__name__ = getattr(handler, "__name__", "handler")
    return conditional_get

"""DeathStarBench's requests and answers: form bodies as its generator sends them, and
plain-text answers as its nginx handlers give them (ngx.say: the text and a newline).

The generator does not percent-encode its values: a compose's text arrives with raw
spaces, `@`, `:` and `/`. The body is split on `&` and each pair on its first `=`, then
percent-decoded (`+` is a space), which leaves those characters as they came; only `&`,
`=` (in a name), `%XX` and `+` mean something, and the generator sends none in a value.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from functools import cache, wraps
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from services.kit.errors import ApiError
from services.kit.jsoncodec import dumps

INCOMPLETE = "Incomplete arguments"
FORM_TYPE = "application/x-www-form-urlencoded"


class Incomplete(ApiError):
    def __init__(self) -> None:
        super().__init__(400, INCOMPLETE, code="incomplete_arguments")


def text(message: str, status: int = 200) -> web.Response:
    return web.Response(text=message + "\n", status=status, content_type="text/plain")


def json_array(items: list[object]) -> web.Response:
    return web.Response(body=dumps(items), content_type="application/json", charset="utf-8")


def parse_form(raw: bytes) -> dict[str, str]:
    """name -> value of a form body (the last of a repeated name, as a dict keeps it)."""
    try:
        body = raw.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "The form is not UTF-8", code="bad_request") from None
    return dict(parse_qsl(body, keep_blank_values=True))


async def read_form(request: web.Request) -> dict[str, str]:
    return parse_form(await request.read())


def given(args: Mapping[str, str], *names: str) -> bool:
    """Whether every name has a non-empty value (DeathStarBench's _StrIsEmpty)."""
    return all(args.get(name) for name in names)


def require(args: Mapping[str, str], *names: str) -> list[str]:
    """The values of `names`; 400 Incomplete arguments when one is missing or empty."""
    if not given(args, *names):
        raise Incomplete()
    return [args[name] for name in names]


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check(args: Mapping[str, str], properties: Mapping[str, Any]) -> None:
    """Every argument the document states, when present (empty too), is as it says: its
    pattern, length and choices. A 400 naming the first that is not; so the service
    accepts exactly what its document allows, not only what it happens to use."""
    for name, rule in properties.items():
        value = args.get(name)
        if value is None:
            continue
        fits = (
            rule.get("minLength", 0) <= len(value) <= rule.get("maxLength", len(value))
            and ("pattern" not in rule or _pattern(rule["pattern"]).search(value))
            and ("enum" not in rule or value in rule["enum"])
        )
        if not fits:
            raise ApiError(400, f"{name} is not valid: see the operation's document")


def integer(args: Mapping[str, str], name: str, low: int, high: int) -> int:
    value = args[name]
    if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise ApiError(400, f"{name} must be an integer from {low} to {high}")
    return int(value)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def answers_in_text(handler: Handler) -> Handler:
    """Every failure answered as DeathStarBench answers it: its status, the message in
    plain text (its callers read text, never the JSON error shape)."""

    @wraps(handler)
    async def handle(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ApiError as error:
            response = text(error.message, error.status)
            response.headers.update(error.headers)
            return response

    return handle

"""Documented request headers, checked as the OpenAPI document states them.

A header the document names (Endpoint.headers, If-None-Match) has a schema there:
printable ASCII, no space at either end (HTTP drops those), a bounded length. The same
pattern checks the request, so what schemathesis is told is what the kit enforces; a
value outside it is a 400 naming the header, in the shared error shape.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .errors import ApiError, field_error

MAX_HEADER_LENGTH = 200  # Endpoint.headers (Idempotency-Key ...)
HEADER_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_HEADER_VALUE = re.compile(HEADER_PATTERN)


def header_schema(max_length: int = MAX_HEADER_LENGTH) -> dict[str, Any]:
    """The JSON schema of a documented header of at most `max_length` characters."""
    return {"type": "string", "maxLength": max_length, "pattern": HEADER_PATTERN}


HEADER_PARAMETER = header_schema()


def header_value(
    request: web.Request, name: str, max_length: int = MAX_HEADER_LENGTH
) -> str | None:
    """A documented header's value, None when absent; a 400 naming it when malformed."""
    value = request.headers.get(name)
    if value is not None and not (len(value) <= max_length and _HEADER_VALUE.fullmatch(value)):
        rule = f"1 to {max_length} printable ASCII characters"
        raise ApiError(
            400,
            f"{name} must be {rule}",
            code="validation_error",
            details=[field_error(name, rule, "string_pattern_mismatch", "header")],
        )
    return value

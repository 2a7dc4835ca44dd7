"""The one error shape: {"error": message, "code": machine code, "details": [...]}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


def code_for(status: int) -> str:
    return CODES.get(status, "error" if status >= 400 else "ok")


class ApiError(Exception):
    """Raised by handlers and domain functions; the middleware answers it in the shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or code_for(status)
        self.details = list(details)
        self.headers = dict(headers or {})

    def to_response(self) -> web.Response:
        return error_response(
            self.status, self.message, code=self.code, details=self.details, headers=self.headers
        )


def field_error(field: str, message: str, kind: str, location: str = "body") -> dict[str, str]:
    """One entry of `details`: the field, where it was, what is wrong, a machine type."""
    return {"field": field, "location": location, "message": message, "type": kind}


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, f"{what} {ident} does not exist")


def conflict(message: str, **kwargs: Any) -> ApiError:
    return ApiError(409, message, **kwargs)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Iterable[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": message, "code": code or code_for(status), "details": list(details)}
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def field_errors(error: ValidationError, *, location: str = "body") -> list[dict[str, Any]]:
    """pydantic's errors as `details`: one entry per field, with a dotted path."""
    details = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"])
        details.append(
            {
                "field": path or location,
                "location": location,
                "message": item["msg"],
                "type": item["type"],
            }
        )
    return details


def validation_error(error: ValidationError, *, location: str = "body") -> ApiError:
    details = field_errors(error, location=location)
    fields = ", ".join(sorted({d["field"] for d in details}))
    return ApiError(400, f"Invalid {location}: {fields}", code="validation_error", details=details)


def from_http_exception(exc: web.HTTPException, *, max_body_bytes: int) -> web.Response:
    """aiohttp's own errors (unknown path, wrong method, body too large) in our shape."""
    status = exc.status
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        headers["Allow"] = ", ".join(allowed)
        message = f"Method {exc.method} is not allowed here; allowed: {', '.join(allowed)}"
    elif status == 404:
        message = "Not found"
    elif status == 413:
        message = f"Request body is larger than the limit of {max_body_bytes} bytes"
    else:
        message = exc.reason
    return error_response(status, message, headers=headers)

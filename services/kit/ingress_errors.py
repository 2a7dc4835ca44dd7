"""The ingress's own errors, answered in the error shape by the service the chart makes
ingress-nginx's error backend (`ingress.defaultBackend`).

ingress-nginx sends that service two kinds of request, and both reach its catch-all
route (services.kit.instrument), since neither is one of its own paths:

- an error page (the Ingress annotation custom-http-errors): the failed request,
  rewritten to `/`, with `X-Code` (the status to answer), `X-Service-Name` (whose request
  it was) and `X-Request-ID`. Answered with that status.
- the request of a Service without a ready endpoint (the annotation default-backend), as
  it came, with no header saying so. INGRESS_ROUTES (set by the chart on this service
  only: every ingress prefix and its service) names the service the path belongs to: 503.

Anything else is the catch-all's usual 404 or 405. devstack's nginx answers these errors
itself (devstack/render.py), so there INGRESS_ROUTES is empty and X-Code never comes.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web

from .errors import error_response

CODE_HEADER = "X-Code"
SERVICE_HEADER = "X-Service-Name"


def _answer(status: int, service: str) -> web.Response:
    headers: dict[str, str] = {}
    if status == 502:
        message = f"{service} gave no valid answer"
    elif status == 503:
        message = f"{service} is unavailable (no ready replica); try again"
        headers["Retry-After"] = "1"
    elif status == 504:
        message = f"{service} did not answer in time"
    else:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:  # a code without a name, e.g. 499
            message = "Error"
    return error_response(status, message, headers=headers)


def owner(path: str, routes: Mapping[str, str]) -> str | None:
    """The service whose ingress prefix is the longest one `path` falls under."""
    matches = [p for p in routes if path == p or path.startswith(p.rstrip("/") + "/")]
    return routes[max(matches, key=len)] if matches else None


def ingress_error(
    request: web.Request, own_service: str, routes: Mapping[str, str]
) -> web.Response | None:
    """The answer to an error page or a rerouted request, or None for a plain unknown path."""
    code = request.headers.get(CODE_HEADER, "")
    if code.isdigit() and 400 <= int(code) <= 599:
        return _answer(int(code), request.headers.get(SERVICE_HEADER) or "the service")
    service = owner(request.path, routes)
    if service is not None and service != own_service:
        return _answer(503, service)
    return None

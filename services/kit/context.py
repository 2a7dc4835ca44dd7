"""Per-request context visible to any code the request runs (logging, outbound calls)."""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
# loop.time() by which the current request must be answered; outbound calls stop there.
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "deadline", default=None
)

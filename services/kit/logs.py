"""JSON logging: one object per line with service and request id.

Per-request access lines are the hot path (DESIGN.md 9: a synchronous write per request
cost 59 % of throughput), so they are serialised with orjson into a buffer and written in
batches; successes can be sampled, errors are always written.
"""

from __future__ import annotations

import logging
import os
import random
from time import time
from typing import Any

import orjson
from opentelemetry.trace import get_current_span
from orjson import dumps

from .context import current_request_id, unsampled_traceparent

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; extra= fields are kept."""

    def __init__(self, service: str = "agora") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        span_context = get_current_span().get_span_context()
        if span_context.is_valid:  # tracing on (services.kit.tracing): the line leads to its trace
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        elif traceparent := unsampled_traceparent.get():  # the caller's, unsampled
            entry["trace_id"], entry["span_id"] = traceparent[3:35], traceparent[36:52]
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class AccessLog:
    """Buffered JSON access lines, written to a file descriptor in batches."""

    def __init__(
        self, service: str, *, sample: float = 1.0, fd: int = 1, max_buffered: int = 256
    ) -> None:
        self.service = service
        self.sample = sample
        self.fd = fd
        self.max_buffered = max_buffered
        self._lines: list[bytes] = []
        self._routes: dict[str, bytes] = {}  # route templates are few: encoded once each
        self._random = random.random
        self._template = (
            b'{"ts":%.3f,"level":"%b","service":'
            + orjson.dumps(service)
            + b',"logger":"access","request_id":%b,"method":"%b","path":%b,"route":%b,'
            b'"status":%d,"duration_ms":%.3f}\n'
        )

    def record(
        self,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        nanoseconds: int,
    ) -> None:
        if status < 400 and self.sample < 1.0 and self._random() >= self.sample:
            return
        # %-formatting into bytes is about 5x cheaper than dumping a dict; every value a
        # client chose goes through orjson, which escapes it. (method is an HTTP token.)
        # Whole milliseconds and microseconds formatted as integers cost more
        # instructions than the two %.3f (bench/callgrind.py --wrapper).
        self._lines.append(
            self._template
            % (
                time(),
                b"error" if status >= 500 else b"info",
                dumps(request_id),
                method.encode(),
                dumps(path),
                self._routes.get(route) or self._routes.setdefault(route, dumps(route)),
                status,
                nanoseconds / 1e6,
            )
        )
        if len(self._lines) >= self.max_buffered:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = memoryview(b"".join(self._lines))
        self._lines.clear()
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

"""Prometheus' instant queries, retried a few times before Prometheus counts as down."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

ATTEMPTS = 3
BACKOFF_SECONDS = 1.0
TIMEOUT = aiohttp.ClientTimeout(total=10)


class PrometheusUnavailable(Exception):
    """No usable answer: unreachable, an error status, or an answer of another shape."""


class Prometheus:
    def __init__(
        self, url: str, session: aiohttp.ClientSession, *, backoff: float = BACKOFF_SECONDS
    ) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.backoff = backoff

    async def query(self, query: str) -> dict[str, Any]:
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self.backoff * attempt)
            try:
                async with self.session.get(
                    f"{self.url}/api/v1/query", params={"query": query}, timeout=TIMEOUT
                ) as response:
                    body = await response.read()
                    if response.status != 200:
                        problem = f"HTTP {response.status}: {body[:200]!r}"
                        continue
                    answer = orjson.loads(body)
                    if not isinstance(answer, dict):
                        raise PrometheusUnavailable(f"not a JSON object: {body[:200]!r}")
                    return answer
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
                problem = f"{type(error).__name__}: {error}"
        raise PrometheusUnavailable(f"{self.url}: {problem}")

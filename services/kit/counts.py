"""Likes and comments on posts, as the services that show posts attach them (timelines'
pages, posts' GET of one post): one batch call to engagement per page
(`GET /api/v1/engagement/counts?post_ids=`, the caller's token passed on for
`liked_by_me`), cached briefly per worker, and never a failed page: when engagement is
away, slow or not deployed the counts are null and the answer says so in the header
DEGRADED_HEADER.

In the kit because two services attach them the same way (timelines and posts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import Counter
from pydantic import Field

from .config import KitSettings
from .errors import ApiError
from .http_client import HttpClient
from .jsoncodec import dumps
from .keys import ENGAGEMENT_COUNTS, HTTP_CLIENT, SETTINGS

DEGRADED_HEADER = "Agora-Degraded"  # its value: "counts" (engagement did not answer)
UPSTREAM = "engagement"
FIELDS = ("like_count", "comment_count", "liked_by_me")
UNKNOWN: dict[str, Any] = dict.fromkeys(FIELDS)
MAX_CACHED = 100_000  # entries per worker; past it the cache starts again

LOOKUPS = Counter(
    "engagement_counts_total",
    "Posts given their counts, by where they came from (cache, engagement, none: degraded).",
    ("service", "outcome"),
)


class CountsSettings(KitSettings):
    """Settings of a service that shows posts with their counts."""

    engagement_url: str | None = Field(
        None, pattern=r"^https?://", description="likes and comments; unset: counts null"
    )
    engagement_counts_ttl: float = Field(
        2.0, ge=0, le=3600, description="seconds a post's counts are cached per worker"
    )
    engagement_counts_timeout: float = Field(
        0.5, gt=0, le=30, description="past it posts are answered without counts"
    )

    def counts_upstream(self) -> dict[str, str]:
        """The `upstreams` entry for create_app (none when engagement is not deployed)."""
        return {UPSTREAM: self.engagement_url} if self.engagement_url else {}


async def counts_ctx(app: web.Application) -> AsyncIterator[None]:
    """app[ENGAGEMENT_COUNTS], after the HTTP client (create_app(contexts=[counts_ctx]))."""
    settings = app[SETTINGS]
    assert isinstance(settings, CountsSettings), "counts_ctx needs CountsSettings"
    app[ENGAGEMENT_COUNTS] = EngagementCounts(
        settings.service_name,
        app.get(HTTP_CLIENT),
        ttl=settings.engagement_counts_ttl,
        timeout=settings.engagement_counts_timeout,
    )
    yield


class EngagementCounts:
    """`await counts.of(post_ids, caller_id, authorization)` -> ({post id: fields}, ok)."""

    def __init__(
        self,
        service: str,
        client: HttpClient | None,
        *,
        ttl: float = 2.0,
        timeout: float = 0.5,
    ) -> None:
        self.client = client if client is not None and UPSTREAM in client.upstreams else None
        self.ttl = ttl
        self.timeout = timeout
        self._cache: dict[tuple[int, int], tuple[float, dict[str, Any]]] = {}
        self._outcomes = {
            outcome: LOOKUPS.labels(service, outcome) for outcome in ("cache", "engagement", "none")
        }

    async def of(
        self, post_ids: Sequence[int], caller_id: int | None, authorization: str | None
    ) -> tuple[dict[int, dict[str, Any]], bool]:
        """Each post's {like_count, comment_count, liked_by_me} (liked_by_me null without a
        caller), and False when some could not be had (their fields are all null)."""
        now = time.monotonic()
        viewer = caller_id or 0
        found: dict[int, dict[str, Any]] = {}
        missing: list[int] = []
        for post_id in dict.fromkeys(post_ids):
            cached = self._cache.get((viewer, post_id))
            if cached is not None and cached[0] > now:
                found[post_id] = cached[1]
            else:
                missing.append(post_id)
        self._outcomes["cache"].inc(len(found))
        if not missing:
            return found, True
        fetched = await self._fetch(missing, authorization if caller_id else None)
        if fetched is None:
            self._outcomes["none"].inc(len(missing))
            found.update(dict.fromkeys(missing, UNKNOWN))
            return found, False
        self._outcomes["engagement"].inc(len(fetched))
        if len(self._cache) > MAX_CACHED:
            self._cache.clear()
        for post_id, fields in fetched.items():
            self._cache[(viewer, post_id)] = (now + self.ttl, fields)
        found.update(fetched)
        return found, True

    async def _fetch(
        self, post_ids: list[int], authorization: str | None
    ) -> dict[int, dict[str, Any]] | None:
        if self.client is None:
            return None
        headers = {"Authorization": authorization} if authorization else {}
        params = {"post_ids": ",".join(map(str, post_ids))}
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.client.get(
                    UPSTREAM, "/api/v1/engagement/counts", params=params, headers=headers
                )
        except (ApiError, TimeoutError):
            return None
        if answer.status != 200:
            return None
        return {
            item["post_id"]: {field: item[field] for field in FIELDS}
            for item in answer.json()["items"]
        }


def with_fields(post_json: bytes, fields: dict[str, Any]) -> bytes:
    """A post's JSON object with `fields` added (spliced before its closing brace, so a
    post cached as JSON need not be decoded again)."""
    return post_json[:-1] + b"," + dumps(fields)[1:]


def degraded_headers(ok: bool) -> dict[str, str]:
    return {} if ok else {DEGRADED_HEADER: "counts"}

"""facts: N cat facts fetched concurrently from a catfact.ninja-compatible upstream."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web
from pydantic import Field

from services.kit import app as kit
from services.kit.config import KitSettings, load_settings
from services.kit.http_client import default_policy, http_client_ctx

from .fetch import UPSTREAM, Limits
from .views import LIMITS, api

CATFACT_NINJA = "https://catfact.ninja"
URL = r"^https?://"


class Settings(KitSettings):
    # The upstream: FACTS_UPSTREAM_URL if set, else FACTSOURCE_URL (set by the platform
    # while factsource is an enabled upstream), else the public API.
    facts_upstream_url: str | None = Field(None, pattern=URL, description="wins over the rest")
    factsource_url: str | None = Field(None, pattern=URL, description="the bundled source")
    facts_concurrency: int = Field(10, ge=1, le=100, description="calls in flight per request")
    facts_retry_share: float = Field(
        0.2, ge=0, le=5, description="failed calls repeated, as a share of the amount"
    )
    facts_duplicate_share: float = Field(
        1.0, ge=0, le=10, description="calls replacing duplicates, as a share of the amount"
    )

    @property
    def upstream_url(self) -> str:
        return self.facts_upstream_url or self.factsource_url or CATFACT_NINJA


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    # Per-call timeout, breaker and bulkhead come from the kit settings (UPSTREAM_TIMEOUT,
    # BREAKER_*, UPSTREAM_MAX_CONCURRENT); repeating failed calls is the fetcher's budget.
    policy = replace(default_policy(settings), retries=0)
    app = kit.create_app(
        settings,
        api,
        contexts=[http_client_ctx({UPSTREAM: settings.upstream_url}, {UPSTREAM: policy})],
    )
    app[LIMITS] = Limits(
        settings.facts_concurrency, settings.facts_retry_share, settings.facts_duplicate_share
    )
    return app

"""pipeline: runs graphs of service calls (a DAG), and the ready-made stats and cats."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field, model_validator

from services.kit import app as kit
from services.kit.config import KitSettings, load_settings

from .dag import Limits
from .runner import runner_ctx
from .views import api

URL = r"^https?://"


class Settings(KitSettings):
    calc_url: str = Field(pattern=URL)
    # Optional until facts and factcheck are deployed: their steps answer 503 meanwhile.
    facts_url: str | None = Field(None, pattern=URL)
    factcheck_url: str | None = Field(None, pattern=URL)
    pipeline_max_steps: int = Field(200, ge=1, le=10_000)
    pipeline_max_concurrency: int = Field(16, ge=1, le=1_000, description="per run")
    pipeline_step_timeout: float = Field(5.0, gt=0, le=300, description="default per step")
    pipeline_run_timeout: float = Field(8.0, gt=0, le=300, description="default and maximum")

    @model_validator(mode="after")
    def run_ends_before_the_request(self) -> Settings:
        if self.pipeline_run_timeout >= self.request_timeout:
            raise ValueError(
                "PIPELINE_RUN_TIMEOUT must be below REQUEST_TIMEOUT, so that a run that "
                "times out is still answered"
            )
        return self

    def limits(self) -> Limits:
        return Limits(
            max_steps=self.pipeline_max_steps,
            max_concurrency=self.pipeline_max_concurrency,
            step_timeout=self.pipeline_step_timeout,
            run_timeout=self.pipeline_run_timeout,
        )

    def upstreams(self) -> dict[str, str]:
        urls = {"calc": self.calc_url, "facts": self.facts_url, "factcheck": self.factcheck_url}
        return {name: url for name, url in urls.items() if url}


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings(Settings)
    upstreams = settings.upstreams()
    return kit.create_app(
        settings, api, upstreams=upstreams, contexts=[runner_ctx(settings.limits(), upstreams)]
    )

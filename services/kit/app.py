"""create_app: what every service's application has, around the service's own routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from aiohttp import web

from .api import Api
from .config import KitSettings
from .db import postgres_ctx
from .health import Readiness, handle_healthz, handle_readyz, readiness_ctx
from .http_client import http_client_ctx
from .keys import ACCESS_LOG, API, READINESS, REQUEST_METRICS, SETTINGS
from .logs import AccessLog, access_log_ctx
from .metrics import RequestMetrics, metrics_handler, request_metrics_ctx
from .middleware import instrumentation
from .openapi import add_docs_routes
from .redis_client import redis_ctx

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


class MissingSetting(SystemExit):
    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"configuration error: {variable}: is required {why}")


def create_app(
    settings: KitSettings,
    api: Api,
    *,
    postgres: bool = False,
    redis: bool = False,
    upstreams: Mapping[str, str] | None = None,
    contexts: Sequence[CleanupCtx] = (),
) -> web.Application:
    """The application of one service.

    `upstreams` maps the services it calls to their base URLs (app[HTTP_CLIENT] calls
    them). `contexts` are the service's own cleanup contexts (consumers, relays); they
    start after the kit's pools and clients and stop before them. Readiness turns true
    after all of them.
    """
    if postgres and not settings.database_url:
        raise MissingSetting("DATABASE_URL", f"by {settings.service_name}")
    if redis and not settings.redis_url:
        raise MissingSetting("REDIS_URL", f"by {settings.service_name}")

    metrics = RequestMetrics(settings.service_name)
    access_log = AccessLog(settings.service_name, sample=settings.access_log_sample)
    readiness = Readiness()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            instrumentation(
                api,
                metrics,
                access_log,
                readiness,
                request_timeout=settings.request_timeout,
                max_body_bytes=settings.max_body_bytes,
            )
        ],
    )
    app[SETTINGS] = settings
    app[API] = api
    app[READINESS] = readiness
    app[REQUEST_METRICS] = metrics
    app[ACCESS_LOG] = access_log

    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", metrics_handler(metrics))
    add_docs_routes(app, api)
    api.add_routes(app)

    app.cleanup_ctx.append(access_log_ctx)
    app.cleanup_ctx.append(request_metrics_ctx)
    if postgres:
        app.cleanup_ctx.append(postgres_ctx)
    if redis:
        app.cleanup_ctx.append(redis_ctx)
    if upstreams:
        app.cleanup_ctx.append(http_client_ctx(upstreams))
    app.cleanup_ctx.extend(contexts)
    app.cleanup_ctx.append(readiness_ctx)
    return app

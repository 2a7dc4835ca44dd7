"""create_app: what every service's application has, around the service's own routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from .api import Api
from .auth import signer_from, verifier_from
from .background import every
from .config import KitSettings
from .db import PoolInit, postgres_ctx
from .deadlines import SWEEP_SECONDS, Deadlines
from .faults import Faults
from .health import Readiness, handle_healthz, handle_readyz, readiness_ctx
from .http_client import http_client_ctx
from .impersonation import load_credential
from .instrument import Instrumentation
from .keys import (
    ACCESS_LOG,
    API,
    IMPERSONATION_CREDENTIAL,
    INSTRUMENTATION,
    READINESS,
    REQUEST_METRICS,
    SETTINGS,
    TOKEN_SIGNER,
    TOKEN_VERIFIER,
    TRACER,
    WEBSOCKETS,
)
from .logs import AccessLog
from .metrics import RequestMetrics, metrics_handler
from .openapi import add_docs_routes
from .redis_client import redis_ctx
from .tracing import TracedAccessLog, connection_class, provider_for, tracing_ctx
from .websocket import Sockets, parse_origins

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
ACCESS_LOG_FLUSH_SECONDS = 0.5


class MissingSetting(SystemExit):
    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"configuration error: {variable}: is required {why}")


def create_app(
    settings: KitSettings,
    api: Api,
    *,
    postgres: bool = False,
    postgres_init: PoolInit | None = None,
    redis: bool = False,
    upstreams: Mapping[str, str] | None = None,
    contexts: Sequence[CleanupCtx] = (),
    tracer_provider: Any = None,
) -> web.Application:
    """The application of one service.

    `postgres_init` runs on each new pooled connection (the service's type codecs).
    `upstreams` maps the services it calls to their base URLs (app[HTTP_CLIENT] calls
    them). `contexts` are the service's own cleanup contexts (consumers, relays); they
    start after the kit's pools and clients and stop before them. Readiness turns true
    after all of them. Tracing (services.kit.tracing) is on when the environment names an
    OTLP endpoint, or with `tracer_provider` (tests).
    """
    if postgres and not settings.database_url:
        raise MissingSetting("DATABASE_URL", f"by {settings.service_name}")
    if redis and not settings.redis_url:
        raise MissingSetting("REDIS_URL", f"by {settings.service_name}")
    if any(endpoint.auth for endpoint in api.endpoints) and not settings.auth_public_key_file:
        raise MissingSetting(
            "AUTH_PUBLIC_KEY_FILE", f"by {settings.service_name}: routes of it need a user"
        )
    verifier = verifier_from(settings)
    signer = signer_from(settings, verifier)

    metrics = RequestMetrics(settings.service_name)
    provider = tracer_provider or provider_for(settings.service_name)
    tracer = provider.get_tracer("agora.kit") if provider is not None else None
    access_log = (AccessLog if tracer is None else TracedAccessLog)(
        settings.service_name, sample=settings.access_log_sample
    )
    readiness = Readiness()
    deadlines = Deadlines()
    instrumentation = Instrumentation(
        metrics,
        access_log,
        readiness,
        deadlines,
        request_timeout=settings.request_timeout,
        max_body_bytes=settings.max_body_bytes,
        tracer=tracer,
    )
    app = web.Application(client_max_size=settings.max_body_bytes)
    if tracer is not None:
        app[TRACER] = tracer
        app.cleanup_ctx.append(tracing_ctx(provider))  # first: exports the last spans last
    app[SETTINGS] = settings
    app[API] = api
    app[READINESS] = readiness
    app[REQUEST_METRICS] = metrics
    app[ACCESS_LOG] = access_log
    app[INSTRUMENTATION] = instrumentation
    if verifier is not None:
        app[TOKEN_VERIFIER] = verifier
    if signer is not None:
        app[TOKEN_SIGNER] = signer
    if settings.impersonation_credential_file:
        app[IMPERSONATION_CREDENTIAL] = load_credential(settings.impersonation_credential_file)
    if api.has_websockets:
        sockets = Sockets(
            settings.service_name,
            readiness,
            max_connections=settings.ws_max_connections,
            allowed_origins=parse_origins(settings.ws_allowed_origins),
            max_message_bytes=settings.ws_max_message_bytes,
            heartbeat=settings.ws_heartbeat,
            send_queue=settings.ws_send_queue,
            close_timeout=settings.ws_close_timeout,
        )
        app[WEBSOCKETS] = sockets
        metrics.also_flush.append(sockets.flush)
        # After the drain and with the listener closed, before the cleanup contexts.
        app.on_shutdown.append(sockets.close_all)

    # Probes and scrapes come every few seconds: counted in the metrics, and given an
    # access line only when they fail, so the log shows the traffic that matters.
    instrumentation.add(app, "GET", "/healthz", handle_healthz, log_success=False)
    instrumentation.add(app, "GET", "/readyz", handle_readyz, log_success=False)
    instrumentation.add(app, "GET", "/metrics", metrics_handler(metrics), log_success=False)
    add_docs_routes(app, api, instrumentation)
    api.add_routes(app, instrumentation, Faults.from_settings(settings))
    instrumentation.add_catch_all(app)  # last: it matches every path

    app.cleanup_ctx.append(every("access-log", ACCESS_LOG_FLUSH_SECONDS, access_log.flush))
    app.cleanup_ctx.append(every("metrics", settings.metrics_flush_seconds, metrics.flush))
    app.cleanup_ctx.append(every("deadlines", SWEEP_SECONDS, deadlines.sweep))
    if postgres:
        app.cleanup_ctx.append(
            postgres_ctx(postgres_init)
            if tracer is None
            else postgres_ctx(postgres_init, connection_class(tracer))
        )
    if redis:
        app.cleanup_ctx.append(redis_ctx)
    if upstreams:
        app.cleanup_ctx.append(http_client_ctx(upstreams))
    app.cleanup_ctx.extend(contexts)
    app.cleanup_ctx.append(readiness_ctx)
    return app

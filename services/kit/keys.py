"""Every typed key stored on an application or a request, in one module."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey("settings", "KitSettings")
API = web.AppKey("api", "Api")
READINESS = web.AppKey("readiness", "Readiness")
INSTRUMENTATION = web.AppKey("instrumentation", "Instrumentation")
REQUEST_METRICS = web.AppKey("request_metrics", "RequestMetrics")
ACCESS_LOG = web.AppKey("access_log", "AccessLog")
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", "aioredis.Redis")
HTTP_CLIENT = web.AppKey("http_client", "HttpClient")
# services.kit.events.consuming: one StreamConsumer per stream the service consumes.
EVENT_CONSUMERS = web.AppKey("event_consumers", list)
# services.kit.auth: what checks bearer tokens (every service with a public key) and
# what issues them (the service given the private key: users).
TOKEN_VERIFIER = web.AppKey("token_verifier", "TokenVerifier")
TOKEN_SIGNER = web.AppKey("token_signer", "TokenSigner")
# services.kit.impersonation: the credential of users and of socialcompat (absent elsewhere).
IMPERSONATION_CREDENTIAL = web.AppKey("impersonation_credential", str)
WEBSOCKETS = web.AppKey("websockets", "Sockets")
# services.kit.counts: likes and comments attached to posts (timelines, posts).
ENGAGEMENT_COUNTS = web.AppKey("engagement_counts", "EngagementCounts")

# The route that answers paths no other route matches (services.kit.instrument).
CATCH_ALL = web.AppKey("catch_all", web.AbstractResource)
TRACER = web.AppKey("tracer", "Tracer")  # services.kit.tracing; absent when tracing is off

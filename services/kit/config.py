"""Typed settings from environment variables, validated once at start.

Every service reads its configuration from the environment (Kubernetes and devstack
both set it from values.yaml). A wrong value stops the process with a message that
names the variable, instead of failing later in the middle of a request.
"""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Read by prometheus-client when it is first imported: set before that (see serve.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class KitSettings(BaseSettings):
    """Settings every service has. A service subclasses this to add its own."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9-]*$")
    bind_host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    web_concurrency: int = Field(2, ge=1, le=64, description="gunicorn workers")
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    access_log_sample: float = Field(
        1.0, ge=0.0, le=1.0, description="share of successful requests logged; errors always are"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    page_size: int = Field(20, ge=1, le=100, description="items of a list without `limit`")
    request_timeout: float = Field(10.0, gt=0, le=300, description="per-request deadline")
    shutdown_grace: float = Field(20.0, gt=0, le=600, description="gunicorn graceful timeout")
    drain_seconds: float = Field(
        1.0, ge=0, le=60, description="keep serving (not ready) this long after SIGTERM"
    )
    metrics_flush_seconds: float = Field(1.0, gt=0, le=60)
    ingress_routes: dict[str, str] = Field(
        default_factory=dict,
        description="JSON {prefix: service}: set on the ingress's error backend (ingress_errors)",
    )

    # WebSocket routes (services.kit.websocket), per worker.
    ws_max_connections: int = Field(5000, ge=1, le=1_000_000, description="over it: 503")
    ws_allowed_origins: str = Field(
        "", max_length=4000, description='comma-separated origins, "*" any; empty: same host'
    )
    ws_max_message_bytes: int = Field(64 * 1024, ge=128, le=16 * 1024 * 1024, description="1009")
    ws_heartbeat: float = Field(20.0, gt=0, le=3600, description="ping after this idle time")
    ws_send_queue: int = Field(32, ge=1, le=100_000, description="messages before 4008")
    ws_close_timeout: float = Field(2.0, gt=0, le=60, description="close handshake")

    database_url: str | None = Field(None, pattern=r"^postgres(ql)?://")
    db_pool_min: int = Field(1, ge=0, le=50)
    db_pool_max: int = Field(5, ge=1, le=100)
    redis_url: str | None = Field(None, pattern=r"^rediss?://")

    # Outbound calls (services.kit.http_client), per upstream.
    upstream_connect_timeout: float = Field(1.0, gt=0, le=60)
    upstream_timeout: float = Field(5.0, gt=0, le=300, description="per attempt")
    upstream_retries: int = Field(2, ge=0, le=10, description="extra attempts when safe")
    upstream_max_concurrent: int = Field(100, ge=1, le=10_000, description="bulkhead")
    breaker_failures: int = Field(5, ge=1, le=1000, description="failures that open it")
    breaker_cooldown: float = Field(5.0, gt=0, le=600, description="seconds before a probe")

    # Bearer tokens (services.kit.auth): every service that checks them has the public key;
    # only the one that issues them (users) has the private key.
    auth_public_key_file: str | None = Field(None, description="PEM public key(s) or certificate")
    auth_private_key_file: str | None = Field(None, description="PEM Ed25519 private key")
    auth_issuer: str = Field("agora-users", min_length=1, max_length=200)
    auth_audience: str = Field("agora", min_length=1, max_length=200)
    auth_token_ttl: int = Field(3600, ge=60, le=30 * 86400, description="seconds a token lasts")
    auth_leeway: float = Field(30.0, ge=0, le=600, description="clock skew allowed on exp")
    # services.kit.impersonation: users (which issues a user's token on it) and the
    # services with `impersonation: use` (socialcompat) have it; no other.
    impersonation_credential_file: str | None = Field(
        None, description="file with the secret that lets a service act for any user"
    )

    # Fault injection (services.kit.faults): off unless set, for making a bad canary.
    fault_error_rate: float = Field(0.0, ge=0, le=1, description="share answered 500")
    fault_latency_ms: float = Field(0.0, ge=0, le=60_000, description="added before handling")
    fault_latency_rate: float = Field(1.0, ge=0, le=1, description="share delayed")

    # An A/B test's variant of this replica's track (the platform sets it: devstack and
    # the chart alike); empty outside an A/B test. devstack's ingress also sends X-Variant.
    ab_variant: str = Field("", max_length=63, description="the A/B variant served")

    @model_validator(mode="after")
    def pool_bounds(self) -> KitSettings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        return self


SettingsT = TypeVar("SettingsT", bound=KitSettings)


def describe_errors(error: ValidationError) -> list[str]:
    """One line per bad variable, naming it the way it is set: in upper case."""
    lines = []
    for item in error.errors():
        variable = "_".join(str(part) for part in item["loc"]).upper() or "settings"
        shown = item.get("input")
        got = "" if isinstance(shown, dict) else f" (got {shown!r})"
        lines.append(f"{variable}: {item['msg']}{got}")
    return lines


def load_settings(cls: type[SettingsT], **overrides: object) -> SettingsT:
    """Read settings from the environment; on a bad value print why and exit 2."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        for line in describe_errors(error):
            print(f"configuration error: {line}", file=sys.stderr)
        raise SystemExit(2) from None

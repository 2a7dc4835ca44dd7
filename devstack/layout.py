"""Where devstack keeps its state and which 127.0.0.1 ports it uses.

Everything is derived from three environment variables, so a second instance (the one
`make test` starts, say) can run beside a user's `make up`:

    AGORA_RUN_DIR       state, logs and generated configs   (default .run)
    AGORA_INGRESS_PORT  the ingress, i.e. AGORA_URL           (default 8080)
    AGORA_PORT_BASE     everything else is base + an offset   (default 18000)

and AGORA_EVALUATION_INTERVAL, how often Prometheus evaluates the rules (default 10s; the
test stack shortens it so that alerts fire within its tests), and AGORA_READY_TIMEOUT, the
seconds a replica, PostgreSQL or Prometheus has to become ready (default 180: seconds on a
quiet machine, over a minute on 2 shared cores at a load of 100+).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .topology import REPO, Workload

MAX_REPLICAS = 9  # ports per service: one for its Service, nine for replicas (a canary's too)


@dataclass(frozen=True)
class Replica:
    workload: Workload
    index: int
    port: int
    # Prometheus labels the replica's series with it, as the chart's pod label does:
    # "stable", or "canary" for a canary's replicas.
    track: str = "stable"
    variant: str = ""  # an A/B test's variant of this track (a Prometheus label too)

    @property
    def name(self) -> str:
        if self.track == "canary":
            return f"{self.workload.name}-canary-{self.index}"
        return f"{self.workload.name}-{self.index}"


@dataclass(frozen=True)
class Layout:
    run_dir: Path
    ingress_port: int
    port_base: int
    evaluation_interval: str = "10s"
    # Tracing (docs/tracing.md): AGORA_TRACING a sampling ratio (0 to 1) runs devstack's
    # own receiver (devstack/traces.py); AGORA_OTLP_ENDPOINT points at another collector.
    # Neither set: tracing off, no spans at all.
    tracing_ratio: float | None = None
    otlp_endpoint: str | None = None
    ready_timeout: float = 180.0  # seconds a replica has to become ready

    @classmethod
    def from_env(cls) -> Layout:
        run_dir = Path(os.environ.get("AGORA_RUN_DIR", REPO / ".run"))
        if not run_dir.is_absolute():
            run_dir = REPO / run_dir
        return cls(
            run_dir=run_dir,
            ingress_port=int(os.environ.get("AGORA_INGRESS_PORT", "8080")),
            port_base=int(os.environ.get("AGORA_PORT_BASE", "18000")),
            evaluation_interval=os.environ.get("AGORA_EVALUATION_INTERVAL", "10s"),
            tracing_ratio=_ratio(os.environ.get("AGORA_TRACING", "")),
            otlp_endpoint=os.environ.get("AGORA_OTLP_ENDPOINT") or None,
            ready_timeout=float(os.environ.get("AGORA_READY_TIMEOUT", "180")),
        )

    # ---------------------------------------------------------------- ports

    @property
    def postgres_port(self) -> int:
        return self.port_base + 1

    @property
    def redis_port(self) -> int:
        return self.port_base + 2

    @property
    def prometheus_port(self) -> int:
        return self.port_base + 90

    # The exporters beside Prometheus (devstack/monitoring.py) and nginx's stub_status.
    @property
    def node_exporter_port(self) -> int:
        return self.port_base + 91

    @property
    def nginx_exporter_port(self) -> int:
        return self.port_base + 92

    @property
    def postgres_exporter_port(self) -> int:
        return self.port_base + 93

    @property
    def redis_exporter_port(self) -> int:
        return self.port_base + 94

    @property
    def nginx_status_port(self) -> int:
        return self.port_base + 95

    @property
    def traces_port(self) -> int:
        """devstack's OTLP/HTTP receiver and its trace API (devstack/traces.py)."""
        return self.port_base + 96

    @property
    def traces_url(self) -> str | None:
        """The receiver's address when devstack runs it (AGORA_TRACING without
        AGORA_OTLP_ENDPOINT), else None."""
        if self.tracing_ratio is None or self.otlp_endpoint:
            return None
        return f"http://127.0.0.1:{self.traces_port}"

    @property
    def sampling_ratio(self) -> float:
        """The head sampling ratio of the ingress and the services (1 when only an
        endpoint is given)."""
        if self.tracing_ratio is not None:
            return self.tracing_ratio
        return 1.0 if self.otlp_endpoint else 0.0

    @property
    def tracing_endpoint(self) -> str | None:
        """Where the services export spans (OTEL_EXPORTER_OTLP_ENDPOINT); None: off."""
        return self.otlp_endpoint or self.traces_url

    def service_port(self, index: int) -> int:
        """The load-balanced address of the index-th service (its "Service")."""
        return self.port_base + 100 + 10 * index

    def replicas(self, workloads: list[Workload]) -> list[Replica]:
        """Every replica: each service's stable ones on the ports after its Service's, its
        canary's (when it has one) on the last ports of the same block."""
        result = []
        for index, workload in enumerate(workloads):
            canary = workload.canary
            if workload.replicas + (canary.replicas if canary else 0) > MAX_REPLICAS:
                raise ValueError(
                    f"{workload.name}: devstack runs at most {MAX_REPLICAS} replicas"
                    " (its canary's included)"
                )
            base = self.service_port(index)
            variant = canary.ab.stable if canary and canary.ab else ""
            result += [
                Replica(workload, r, base + 1 + r, variant=variant)
                for r in range(workload.replicas)
            ]
            if canary:
                canary_workload = workload.canary_workload()
                variant = canary.ab.canary if canary.ab else ""
                result += [
                    Replica(canary_workload, r, base + MAX_REPLICAS - r, "canary", variant)
                    for r in range(canary.replicas)
                ]
        return result

    def service_urls(self, workloads: list[Workload]) -> dict[str, str]:
        return {w.name: f"http://127.0.0.1:{self.service_port(i)}" for i, w in enumerate(workloads)}

    # ---------------------------------------------------------------- URLs and paths

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def supervisor_conf(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket_dir(self) -> Path:
        """Unix sockets (supervisord, PostgreSQL): a short path, as sockets need one."""
        tag = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"agora-{tag}"

    @property
    def supervisor_socket(self) -> Path:
        return self.socket_dir / "supervisor.sock"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.run_dir / "supervisord.pid"

    @property
    def canary_file(self) -> Path:
        """The canaries `devstack canary` started, and what `promote` made stable."""
        return self.run_dir / "canary.json"

    @property
    def secrets_file(self) -> Path:
        return self.run_dir / "secrets.json"

    @property
    def impersonation_credential(self) -> Path:
        """The secret of services/kit/impersonation.py (users and socialcompat only)."""
        return self.run_dir / "impersonation" / "credential"

    @property
    def auth_dir(self) -> Path:
        """The token keypair: private.pem (users only) and public.pem (every verifier)."""
        return self.run_dir / "auth"

    @property
    def rules_dir(self) -> Path:
        """Rules rendered from values.yaml (the SLO objectives); the others are the chart's."""
        return self.run_dir / "rules"

    @property
    def consoles_dir(self) -> Path:
        return self.run_dir / "consoles"

    @property
    def console_libraries_dir(self) -> Path:
        return self.run_dir / "console_libraries"

    def metrics_dir(self, replica: Replica) -> Path:
        return self.run_dir / "metrics" / replica.name


def _ratio(text: str) -> float | None:
    """AGORA_TRACING: empty or "off" is off; "on" is 1; else a ratio from 0 to 1."""
    text = text.strip().lower()
    if text in ("", "off", "false", "no"):
        return None
    if text in ("on", "true", "yes"):
        return 1.0
    ratio = float(text)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"AGORA_TRACING: a sampling ratio from 0 to 1, or on/off (got {text!r})")
    return ratio

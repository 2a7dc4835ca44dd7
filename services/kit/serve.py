"""`agora-serve <service>`: run one service under gunicorn with the kit's worker.

The process is gunicorn's master (PID 1 in a container, so it receives SIGTERM). It
validates the settings before forking, prepares the prometheus multiprocess directory
(wiped at start, dead workers marked on exit) and loads the service's `create_app`
in every worker after the fork.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import resource
import signal
import sys
import tempfile
from types import ModuleType
from typing import Any

from aiohttp import web

from .config import MULTIPROC_ENV, KitSettings, load_settings
from .keys import REQUEST_METRICS

WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR
# Above the load balancer's idle upstream timeout (nginx: 60 s), so the proxy closes
# idle connections first and never reuses one the worker has just closed.
KEEPALIVE = 75


def prepare_metrics_dir(service: str) -> str:
    path = os.environ.get(MULTIPROC_ENV) or os.path.join(
        tempfile.gettempdir(), f"agora-metrics-{service}-{os.environ.get('PORT', '8000')}"
    )
    os.environ[MULTIPROC_ENV] = path
    from .metrics import reset_multiprocess_dir  # first import of prometheus_client

    reset_multiprocess_dir(path)
    return path


def raise_open_files_limit() -> int:
    """The soft limit on open files up to the hard one (as Go's runtime does): every
    WebSocket or keep-alive connection is a descriptor, and a soft limit of 1024 (many
    systems' default) would refuse connections long before memory runs out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1024 * 1024
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def service_module(service: str) -> ModuleType:
    """`catalog` is services/catalog/app.py; a dotted path names any module (tests, bench)."""
    if "." in service:
        return importlib.import_module(service)
    return importlib.import_module(f"services.{service.replace('-', '_')}.app")


def gunicorn_options(settings: KitSettings) -> dict[str, Any]:
    from .logs import JsonFormatter
    from .metrics import mark_worker_dead

    return {
        "bind": f"{settings.bind_host}:{settings.port}",
        "workers": settings.web_concurrency,
        "worker_class": "services.kit.worker.AgoraWorker",
        "graceful_timeout": math.ceil(settings.shutdown_grace),
        "timeout": 30,
        "keepalive": KEEPALIVE,
        "max_requests": 0,  # no recycling: each new worker leaves metric files behind
        "control_socket_disable": True,  # gunicorn 24+ would write one under $HOME
        "accesslog": None,
        "proc_name": f"agora-{settings.service_name}",
        "loglevel": settings.log_level.lower(),
        "child_exit": lambda arbiter, worker: mark_worker_dead(worker.pid),
        "post_fork": lambda arbiter, worker: worker.catch_early_stop(arbiter),
        "logconfig_dict": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonFormatter, "service": settings.service_name}},
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "formatter": "json",
                    "stream": "ext://sys.stdout",
                }
            },
            "root": {"level": settings.log_level, "handlers": ["stdout"]},
            "loggers": {
                "gunicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
                "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
                "aiohttp.access": {"level": "WARNING", "handlers": [], "propagate": False},
            },
        },
    }


class RunnerFactory:
    """Builds, in each worker after the fork, the service's app and its AppRunner.

    aiohttp's gunicorn worker accepts an async factory returning an AppRunner; keeping
    both here lets the worker reach them on SIGTERM (readiness, open connections).
    """

    def __init__(self, module: ModuleType, settings: KitSettings, keepalive: float) -> None:
        self.module = module
        self.settings = settings
        self.keepalive = keepalive
        self.app: web.Application | None = None
        self.runner: web.AppRunner | None = None

    async def make(self) -> web.AppRunner:
        try:
            self.app = self.module.create_app(self.settings)
        except SystemExit as stop:  # a setting the app needs is missing (MissingSetting)
            print(stop, file=sys.stderr, flush=True)
            # gunicorn halts on a worker that exits with WORKER_BOOT_ERROR; any other code
            # would make it start the worker again, and again.
            raise SystemExit(WORKER_BOOT_ERROR) from None
        self.runner = web.AppRunner(
            self.app,
            keepalive_timeout=self.keepalive,
            access_log=None,  # the kit writes its own, cheaper, access log
            shutdown_timeout=self.settings.shutdown_grace * 0.95,
            handle_signals=False,
        )
        if REQUEST_METRICS in self.app:
            self.app[REQUEST_METRICS].open_connections = self.open_connections
        return self.runner

    def open_connections(self) -> int:
        server = self.runner.server if self.runner else None
        return len(server.connections) if server else 0


def run_gunicorn(module: ModuleType, settings: KitSettings) -> None:
    # Imported only now: gunicorn reads WEB_CONCURRENCY when imported, and a bad value
    # must be reported by load_settings (naming the variable), not as a traceback.
    from gunicorn.app.base import BaseApplication
    from gunicorn.errors import HaltServer

    class ServiceApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return RunnerFactory(module, settings, KEEPALIVE).make

    try:
        ServiceApplication().run()
    except HaltServer as halt:
        # When a second worker fails to boot while gunicorn halts for the first, its
        # halt() raises again instead of exiting: exit with the same status ourselves.
        sys.exit(halt.exit_status)


def main(argv: list[str] | None = None) -> None:
    # As PID 1 in a container, a signal without a handler is ignored: until gunicorn
    # installs its own, SIGTERM must still stop the process.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    parser = argparse.ArgumentParser(prog="agora-serve", description="Run one Agora service.")
    parser.add_argument("service", help="a folder under services/ (catalog), or a module path")
    args = parser.parse_args(argv)
    os.environ.setdefault("SERVICE_NAME", args.service.rsplit(".", 1)[-1].replace("_", "-"))
    prepare_metrics_dir(args.service)
    raise_open_files_limit()
    module = service_module(args.service)
    settings = load_settings(getattr(module, "Settings", KitSettings))
    run_gunicorn(module, settings)


if __name__ == "__main__":
    main()

"""The generated configuration of devstack: supervisord, nginx and Prometheus (with the
exporters, rules and console pages of devstack/monitoring.py)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import orjson
import yaml

from . import monitoring, postgres
from .layout import Layout, Replica
from .topology import REPO, Workload, load_values, upstream_env

# nginx closes idle upstream connections after this: well before gunicorn would (75 s),
# so a replica never closes a connection nginx is about to reuse, and before a draining
# replica stops accepting (DRAIN_SECONDS in values.yaml stays above it), so no idle
# connection to it is left to race with its shutdown.
NGINX_UPSTREAM_IDLE = "1s"


# What the WebSocket locations add (values.yaml `websockets:`; the chart's WebSocket
# Ingress has the same timeouts). proxy_set_header in a location replaces all the
# inherited ones, so the usual three are repeated; Host keeps the port ($http_host, as
# ingress-nginx sends it) for the services' Origin check. The timeouts outlast quiet
# sockets (pings every WS_HEARTBEAT, 20 s); nginx's default of 60 s would cut them.
WEBSOCKET_PROXY = (
    "proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;"
    " proxy_set_header Host $http_host;"
    " proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    " proxy_set_header X-Forwarded-Proto $scheme;"
    " proxy_read_timeout 3600s; proxy_send_timeout 3600s; proxy_buffering off;"
)


def venv_bin(name: str) -> str:
    """A console script of this virtualenv (agora-serve, supervisord, ...)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def find_binary(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs]))
    if not found:
        raise FileNotFoundError(
            f"{name} is not installed: run `make setup` (as root it installs it with apt-get)"
        )
    return found


def command_line(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in [venv_bin(command[0]), *command[1:]])


def _env_line(env: dict[str, str]) -> str:
    # supervisord expands %(name)s in values, so a literal % is written %%.
    return ",".join(
        f'{key}="{value.replace("%", "%%").replace(chr(34), chr(92) + chr(34))}"'
        for key, value in env.items()
    )


def replica_env(
    layout: Layout, replica: Replica, service_urls: dict[str, str], dsns: dict[str, str]
) -> dict[str, str]:
    """The environment of one replica: values.yaml env plus what the platform provides."""
    workload = replica.workload
    env = {
        **workload.env,
        "SERVICE_NAME": workload.name,
        "BIND_HOST": "127.0.0.1",
        "PORT": str(replica.port),
        "WEB_CONCURRENCY": str(workload.workers),
        "PROMETHEUS_MULTIPROC_DIR": str(layout.metrics_dir(replica)),
        "PYTHONUNBUFFERED": "1",
    }
    if workload.database:
        env["DATABASE_URL"] = dsns[workload.database]
    if workload.redis:
        env["REDIS_URL"] = layout.redis_url
    if workload.auth in ("verify", "sign"):
        env["AUTH_PUBLIC_KEY_FILE"] = str(layout.auth_dir / "public.pem")
    if workload.auth == "sign":
        env["AUTH_PRIVATE_KEY_FILE"] = str(layout.auth_dir / "private.pem")
    if replica.variant:  # an A/B test's variant of this track, as the chart's pods get it
        env["AB_VARIANT"] = replica.variant
    if workload.impersonation != "none":
        env["IMPERSONATION_CREDENTIAL_FILE"] = str(layout.impersonation_credential)
    env.update(upstream_env(workload, service_urls))
    if layout.tracing_endpoint:
        env.update(tracing_env(layout))
    return env


def tracing_env(layout: Layout) -> dict[str, str]:
    """The standard OpenTelemetry variables the kit reads (services/kit/tracing.py)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": str(layout.tracing_endpoint),
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(layout.sampling_ratio),
        # spans reach the receiver within a fraction of a second (default 5 s)
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }


def supervisord_conf(
    layout: Layout, workloads: list[Workload], dsns: dict[str, str], data_dir: Path
) -> str:
    logs = layout.logs
    lines = [
        "[unix_http_server]",
        f"file={layout.supervisor_socket}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={layout.supervisor_pidfile}",
        f"childlogdir={logs}",
        f"directory={REPO}",
        "logfile_maxbytes=10MB",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{layout.supervisor_socket}",
        "",
    ]

    def program(
        name: str,
        command: str,
        *,
        priority: int,
        autostart: bool = True,
        stopsignal: str = "TERM",
        stopwaitsecs: int = 10,
        user: str | None = None,
        env: dict[str, str] | None = None,
        own_log: bool = False,
    ) -> None:
        log = logs / (name + ".log")
        if own_log:
            # The process appends to its log file itself: supervisord copying every line
            # through a pipe costs more CPU than the service writing it (a Python process
            # per log line, on a 2-core machine). exec keeps signals going to the service.
            command = "/bin/sh -c " + shlex.quote(f"exec {command} >> {log} 2>&1")
        lines.extend(
            [
                f"[program:{name}]",
                f"command={command}",
                f"priority={priority}",
                f"autostart={'true' if autostart else 'false'}",
                "autorestart=true",
                "startsecs=1",
                "startretries=10",
                f"stopsignal={stopsignal}",
                f"stopwaitsecs={stopwaitsecs}",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={'NONE' if own_log else log}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=1",
            ]
        )
        if user:
            lines.append(f"user={user}")
        if env:
            lines.append(f"environment={_env_line(env)}")
        lines.append("")

    program(
        "postgres",
        command_line(postgres.server_command(data_dir, layout.postgres_port, layout.socket_dir)),
        priority=10,
        stopsignal="INT",
        stopwaitsecs=30,
        user=postgres.SERVER_USER if postgres.running_as_root() else None,
    )
    if any(w.redis for w in workloads):
        program(
            "redis",
            command_line(
                [
                    find_binary("redis-server"),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(layout.redis_port),
                    "--dir",
                    str(layout.run_dir / "redis"),
                    "--appendonly",
                    "yes",
                    # Every write on disk before Redis answers: an order event the outbox
                    # relay saw acknowledged must survive a Redis crash, not just a stop.
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--protected-mode",
                    "no",
                    # as the chart's: past it writes are refused, not the process killed
                    "--maxmemory",
                    str(load_values()["redis"]["maxMemory"]),
                ]
            ),
            priority=10,
        )
    program(
        "nginx",
        command_line(
            [
                find_binary("nginx", "/usr/sbin"),
                "-p",
                str(layout.run_dir / "nginx"),
                "-c",
                str(layout.run_dir / "nginx" / "nginx.conf"),
                "-e",
                str(logs / "nginx-error.log"),
            ]
        ),
        priority=20,
        stopsignal="QUIT",
    )
    program(
        "prometheus",
        command_line(
            [
                find_binary("prometheus"),
                f"--config.file={layout.run_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={layout.run_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{layout.prometheus_port}",
                "--storage.tsdb.retention.time=2d",
                *monitoring.prometheus_flags(layout),
            ]
        ),
        priority=20,
    )
    if layout.traces_url:
        program(
            "traces",
            command_line(
                [
                    venv_bin("python"),
                    "-m",
                    "devstack.traces",
                    "--port",
                    str(layout.traces_port),
                    "--jsonl",
                    str(logs / "traces.jsonl"),
                ]
            ),
            priority=20,
        )
    for exporter in monitoring.exporters(layout, workloads):
        command = [find_binary(exporter.command[0]), *exporter.command[1:]]
        program(exporter.name, command_line(command), priority=25, env=exporter.env)
    urls = layout.service_urls(workloads)
    replicas = layout.replicas(workloads)
    for replica in replicas:
        grace = int(float(replica.workload.env.get("SHUTDOWN_GRACE", "20")))
        program(
            replica.name,
            command_line(replica.workload.command),
            priority=30,
            autostart=False,  # started by `devstack up` once migrations ran
            stopwaitsecs=grace + 5,
            env=replica_env(layout, replica, urls, dsns),
            own_log=True,
        )
    # Each replica is a program of its own (no group): `supervisorctl update <replica>`
    # then restarts that one alone, which is how promote rolls a service's replicas.
    return "\n".join(lines)


# What nginx answers itself (the ingress, and the Services: a Kubernetes Service passes
# every method on, nginx refuses TRACE), in the services' error shape: status -> (the
# status nginx answers, message, code). 502 (no replica took the connection) and 503 are both
# "unavailable, try again": a client does the same for either.
INGRESS_MAX_BODY = "64m"  # above every service's own limit, which answers 413 itself
INGRESS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"  # what it passes on
INGRESS_ERRORS: dict[int, tuple[int, str, str]] = {
    400: (400, "Bad request", "bad_request"),
    404: (404, "Not found", "not_found"),
    405: (405, f"Method not allowed; the ingress passes {INGRESS_METHODS}", "method_not_allowed"),
    408: (408, "The request was not received in time", "request_timeout"),
    413: (413, f"Request body is larger than the ingress limit ({INGRESS_MAX_BODY})",
          "payload_too_large"),
    414: (414, "Request URI is too long", "uri_too_long"),
    494: (431, "Request headers are too large", "headers_too_large"),
    500: (500, "Internal server error", "internal"),
    502: (503, "Service unavailable: no replica answered; try again", "unavailable"),
    503: (503, "Service unavailable: no replica answered; try again", "unavailable"),
    504: (504, "The service did not answer in time", "timeout"),
}  # fmt: skip
# The id of a request: the client's X-Request-ID if it is usable (as services/kit takes
# it), else nginx's own $request_id. Passed to the service and returned on every answer.
REQUEST_ID_MAP = """    map $http_x_request_id $agora_request_id {
        default $request_id;
        "~^[ -~]{1,128}$" $http_x_request_id;
    }"""


def _json_answer(status: int, message: str, code: str, *headers: tuple[str, str]) -> str:
    body = orjson.dumps({"error": message, "code": code, "details": []}).decode()
    lines = [
        "default_type application/json;",
        "add_header X-Request-ID $agora_request_id always;",
        *(f'add_header {name} "{value}" always;' for name, value in headers),
        f"return {status} '{body}';",
    ]
    return " ".join(lines)


def _error_pages() -> str:
    lines = []
    for status, (answer, message, code) in INGRESS_ERRORS.items():
        headers = []
        if answer == 405:
            headers.append(("Allow", INGRESS_METHODS))
        if answer == 503:
            headers.append(("Retry-After", "1"))
        answer_line = _json_answer(answer, message, code, *headers)
        lines.append(f"        error_page {status} = @error_{status};")
        lines.append(f"        location @error_{status} {{ {answer_line} }}")
    return "\n".join(lines)


def traceparent_maps(ratio: float) -> str:
    """The ingress starts the trace when the client did not (docs/tracing.md): a W3C
    traceparent whose trace id is nginx's $request_id (so a request id nginx made is the
    trace id too) and whose sampled flag is drawn on it by split_clients at `ratio` (the
    head decision the services' parent-based samplers follow). A valid incoming one
    passes on unchanged. nginx-light has no OpenTelemetry module: the ingress sends no
    span of its own, so the services' first span names a parent nobody exported."""
    percent = ratio * 100
    if percent >= 100:
        sampled = '        * "01";'
    elif percent <= 0:
        sampled = '        * "00";'
    else:
        sampled = f'        {percent:g}% "01";\n        * "00";'
    return f"""    split_clients "${{request_id}}" $agora_sampled {{
{sampled}
    }}
    map $request_id $agora_ingress_span {{ "~(?<tail>[0-9a-f]{{16}})$" $tail; }}
    map $http_traceparent $agora_traceparent {{
        "~^00-[0-9a-f]{{32}}-[0-9a-f]{{16}}-[0-9a-f]{{2}}$" $http_traceparent;
        default "00-${{request_id}}-${{agora_ingress_span}}-${{agora_sampled}}";
    }}"""


def nginx_conf(layout: Layout, workloads: list[Workload]) -> str:
    """nginx as the ingress (routes from values.yaml) and as each Service's balancer."""
    root = layout.run_dir / "nginx"
    user = "user root;" if os.geteuid() == 0 else ""
    upstreams, service_servers, routes, canaries = [], [], [], []
    replicas = layout.replicas(workloads)
    for index, workload in enumerate(workloads):
        servers = "\n".join(
            f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;"
            for r in replicas
            if r.workload is workload
        )
        upstreams.append(
            f"    upstream svc_{workload.name.replace('-', '_')} {{\n{servers}\n"
            f"        keepalive 32;\n        keepalive_timeout {NGINX_UPSTREAM_IDLE};\n    }}"
        )
        upstream = f"http://svc_{workload.name.replace('-', '_')}"
        service_servers.append(
            f"    server {{  # the Service of {workload.name}\n"
            f"        listen 127.0.0.1:{layout.service_port(index)};\n{_error_pages()}\n"
            f"        location / {{ proxy_pass {upstream}; }}\n    }}"
        )
        # The ingress' routes; a service with a canary is split between its tracks.
        proxy = f"proxy_pass {upstream};"
        if workload.canary:
            upstreams.append(canary_upstream(workload, replicas))
            canaries.append(canary_split(workload))
            proxy = canary_proxy(workload)
        for prefix in workload.ingress:
            prefix = prefix.rstrip("/") or "/"
            if prefix == "/":
                routes.append(f"        location / {{ {proxy} }}")
                continue
            routes.append(f"        location = {prefix} {{ {proxy} }}")
            routes.append(f"        location {prefix}/ {{ {proxy} }}")
        for prefix in workload.websockets:
            prefix = prefix.rstrip("/") or "/"
            for location in (f"= {prefix}", f"{prefix}/"):
                routes.append(f"        location {location} {{ {proxy} {WEBSOCKET_PROXY} }}")
    if not any(w.ingress and "/" in [p.rstrip("/") or "/" for p in w.ingress] for w in workloads):
        routes.append(f"        location / {{ {_json_answer(404, 'Not found', 'not_found')} }}")
    return f"""# Generated by devstack from helm/agora/values.yaml; changes are overwritten.
{user}
daemon off;  # supervisord supervises the master
worker_processes 2;
pid {root / "nginx.pid"};
events {{ worker_connections 4096; }}

http {{
    access_log off;
    client_body_temp_path {root / "tmp" / "body"};
    proxy_temp_path {root / "tmp" / "proxy"};
    fastcgi_temp_path {root / "tmp" / "fastcgi"};
    uwsgi_temp_path {root / "tmp" / "uwsgi"};
    scgi_temp_path {root / "tmp" / "scgi"};
    # Bigger than any service's own limit, so the service answers 413 in the error shape.
    client_max_body_size {INGRESS_MAX_BODY};
    # Bodies and answers of a few dozen KiB stay in memory: past the default buffers
    # (16k in, 8 x 4k out) nginx spooled them to temp files and a 70 KiB factcheck
    # request took 44 ms instead of 3 (BENCHMARKS.md, Cat facts).
    client_body_buffer_size 128k;
    proxy_buffers 16 16k;
    server_tokens off;

    # WebSocket locations ask for an upgrade only when the client did (WEBSOCKET_PROXY).
    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}

    # Upstream keepalive: without it throughput fell 74 % (DESIGN.md 9).
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Request-ID $agora_request_id;
{REQUEST_ID_MAP}
    proxy_set_header traceparent $agora_traceparent;
{traceparent_maps(layout.sampling_ratio if layout.tracing_endpoint else 0.0)}
    # A draining replica lets new connections time out rather than resetting them
    # (services/kit/worker.py); on loopback a connect takes microseconds, so a short
    # timeout moves such a request to another replica quickly. Nothing was sent yet.
    proxy_connect_timeout 250ms;
    proxy_read_timeout 60s;
    # A replica that refuses connections (restarting, draining) is skipped.
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 3;
    proxy_intercept_errors off;

{chr(10).join(upstreams)}
{canary_http(workloads, canaries)}
    server {{  # the ingress
        listen 127.0.0.1:{layout.ingress_port} reuseport backlog=4096;
{canary_server(workloads)}{_error_pages()}
{chr(10).join(routes)}
    }}

{chr(10).join(service_servers)}

{stub_status_server(layout)}
}}
"""


# ---------------------------------------------------------------- canaries and A/B tests
# A service with a canary (devstack/canary.py) has a second upstream, of its canary's
# replicas; its ingress locations choose one per request: the header's always/never
# first, then the cookie's, then the weight (split_clients over the request id). In an
# A/B test the weight's split is over a key cookie instead, which the ingress sets on the
# first answer: one user, one variant. nginx tells which way it went: X-Agora-Track (and
# X-Variant) on the answer, X-Variant on the request to the service.


def _var(name: str) -> str:
    return name.replace("-", "_")


def canary_upstream(workload: Workload, replicas: list[Replica]) -> str:
    servers = "\n".join(
        f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;"
        for r in replicas
        if r.track == "canary" and r.workload.name == workload.name
    )
    return (
        f"    upstream svc_{_var(workload.name)}_canary {{\n{servers}\n"
        f"        keepalive 32;\n        keepalive_timeout {NGINX_UPSTREAM_IDLE};\n    }}"
    )


def canary_split(workload: Workload) -> str:
    """The maps that choose a track (and an A/B test's variant) for one service."""
    canary, name = workload.canary, _var(workload.name)
    assert canary is not None
    header = "$http_" + _var(canary.header.lower())
    lines = [
        f"    # {workload.name}: {canary.header} always/never, "
        + (f"cookie {canary.cookie}, " if canary.cookie else "")
        + f"then {canary.weight} %"
        + (f" sticky by cookie {canary.ab.cookie}" if canary.ab else ""),
        f'    map {header} $canary_{name}_header {{ always canary; never stable; default ""; }}',
    ]
    choices = [f"$canary_{name}_header"]
    if canary.cookie:
        lines.append(
            f"    map $cookie_{canary.cookie} $canary_{name}_cookie "
            '{ always canary; never stable; default ""; }'
        )
        choices.append(f"$canary_{name}_cookie")
    if canary.weight <= 0:
        shares = "* stable;"
    elif canary.weight >= 100:
        shares = "* canary;"
    else:
        shares = f"{canary.weight}% canary; * stable;"
    key = f'"{workload.name}:$ab_key_{canary.ab.cookie}"' if canary.ab else '"$request_id"'
    lines.append(f"    split_clients {key} $canary_{name}_weight {{ {shares} }}")
    choices.append(f"$canary_{name}_weight")
    # the first choice that is not empty wins
    lines.append(
        f'    map "{"".join(choices)}" $canary_{name}_track {{ ~^canary canary; default stable; }}'
    )
    lines.append(
        f"    map $canary_{name}_track $canary_{name}_upstream "
        f"{{ canary svc_{name}_canary; default svc_{name}; }}"
    )
    if canary.ab:
        lines.append(
            f"    map $canary_{name}_track $canary_{name}_variant "
            f"{{ canary {canary.ab.canary}; default {canary.ab.stable}; }}"
        )
    return "\n".join(lines)


def canary_proxy(workload: Workload) -> str:
    """What an ingress location of a service with a canary does."""
    canary, name = workload.canary, _var(workload.name)
    assert canary is not None
    sets = f"set $agora_track $canary_{name}_track;"
    if canary.ab:
        sets += (
            f" set $agora_variant $canary_{name}_variant;"
            f" set $agora_ab_cookie $ab_set_{canary.ab.cookie};"
        )
    return f"{sets} proxy_pass http://$canary_{name}_upstream;"


def canary_http(workloads: list[Workload], splits: list[str]) -> str:
    """The http-level part: each service's maps, the A/B key cookies, the headers."""
    if not splits:
        return ""
    lines = ["", "    # canaries and A/B tests (devstack/canary.py)"]
    for cookie in sorted({w.canary.ab.cookie for w in workloads if w.canary and w.canary.ab}):
        lines += [
            f"    map $cookie_{cookie} $ab_key_{cookie} "
            f'{{ "" $request_id; default $cookie_{cookie}; }}',
            f"    map $cookie_{cookie} $ab_set_{cookie} "
            f'{{ "" "{cookie}=$request_id; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly";'
            ' default ""; }',
        ]
    lines += splits
    lines += [
        # empty values are not sent: only the routes of a canary's service set them
        "    proxy_set_header X-Variant $agora_variant;",
        "    add_header X-Agora-Track $agora_track always;",
        "    add_header X-Variant $agora_variant always;",
        "    add_header Set-Cookie $agora_ab_cookie always;",
        "",
    ]
    return "\n".join(lines)


def canary_server(workloads: list[Workload]) -> str:
    """The ingress server's defaults of the variables canary_proxy sets."""
    if not any(w.canary for w in workloads):
        return ""
    return '        set $agora_track ""; set $agora_variant ""; set $agora_ab_cookie "";\n'


def stub_status_server(layout: Layout) -> str:
    """nginx's connection and request counters, on a listener of their own, for the
    nginx exporter."""
    return (
        "    server {  # stub_status, read by prometheus-nginx-exporter\n"
        f"        listen 127.0.0.1:{layout.nginx_status_port};\n"
        "        location = /stub_status { stub_status; }\n"
        "        location / { return 404; }\n"
        "    }"
    )


def prometheus_yml(layout: Layout, workloads: list[Workload]) -> str:
    """Prometheus scrapes every replica, labelled like the chart's pod discovery does, and
    the exporters; it evaluates the chart's rules."""
    targets = [
        {
            "targets": [f"127.0.0.1:{r.port}"],
            "labels": {
                "app": r.workload.name,
                "pod": r.name,
                "track": r.track,
                **({"variant": r.variant} if r.variant else {}),
            },
        }
        for r in layout.replicas(workloads)
    ]
    config = {
        "global": {
            "scrape_interval": "2s",
            "scrape_timeout": "2s",
            "evaluation_interval": layout.evaluation_interval,
        },
        "rule_files": monitoring.rule_files(layout),
        "scrape_configs": [
            {"job_name": "agora", "metrics_path": "/metrics", "static_configs": targets},
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{layout.prometheus_port}"]}],
            },
            *monitoring.scrape_configs(layout, workloads),
        ],
    }
    return "# Generated by devstack from helm/agora/values.yaml.\n" + yaml.safe_dump(
        config, sort_keys=False
    )

"""The kit's cost: a bare aiohttp handler, the same handler in the kit (with and without
the access log), and catalog's GET /api/v1/products/{id} (kit + PostgreSQL), all through
the ingress, interleaved in one run."""

from __future__ import annotations

from .common import BenchEnv, interleaved, table, wrk

SECONDS = 8
ROUNDS = 3


def run(env: BenchEnv) -> str:
    url = env.agora_url
    cases = [
        ("bare aiohttp handler", f"{url}/bench/bare/1"),
        ("same handler in the kit", f"{url}/bench/kit/1"),
        ("in the kit, access log errors only", f"{url}/bench/kit-quiet/1"),
        ("GET /api/v1/products/{id}", f"{url}/api/v1/products/1"),
    ]
    results = interleaved(
        [(name, lambda u=target, n=name: wrk(n, u, seconds=SECONDS)) for name, target in cases],
        rounds=ROUNDS,
    )
    by_name = {r.name: r for r in results}
    bare = by_name["bare aiohttp handler"].requests_per_s
    kit = by_name["same handler in the kit"].requests_per_s
    quiet = by_name["in the kit, access log errors only"].requests_per_s
    return "\n".join(
        [
            "## Kit: instrumentation cost and GET /api/v1/products/{id}",
            "",
            f"wrk -t2 -c32, {SECONDS} s per case, {ROUNDS} interleaved rounds, medians; "
            "every case through the ingress (nginx) to 2 replicas x 2 gunicorn workers.",
            "",
            table(results, baseline="bare aiohttp handler"),
            "",
            f"Instrumentation (request id, deadline, error shape, RED metrics, access log): "
            f"{(1 - kit / bare) * 100:.1f} % of throughput; "
            f"without the per-request access line: {(1 - quiet / bare) * 100:.1f} %.",
        ]
    )

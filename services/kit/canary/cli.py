"""agora-canary: the chart's analysis Job (templates/canary.yaml). Settings from its env:

    CANARY_SERVICE, CANARY_ANALYSIS (values' canary.analysis as JSON), PROMETHEUS_URL,
    CANARY_NAMESPACE, CANARY_INGRESS, STABLE_DEPLOYMENT, CANARY_DEPLOYMENT

Exit 0: promoted; 1: rolled back (the release fails); 2: a setting is wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aiohttp

from .analysis import Decision, Outcome, Plan, analyse
from .kubernetes import Kubernetes, KubernetesTraffic, ssl_context
from .prometheus import Prometheus

VARIABLES = (
    "CANARY_SERVICE",
    "CANARY_ANALYSIS",
    "PROMETHEUS_URL",
    "CANARY_NAMESPACE",
    "CANARY_INGRESS",
    "STABLE_DEPLOYMENT",
    "CANARY_DEPLOYMENT",
)


def say(message: str) -> None:
    print(message, flush=True)


async def analyse_in_cluster(env: dict[str, str], plan: Plan) -> Outcome:
    connector = aiohttp.TCPConnector(ssl=ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as api_session,
        aiohttp.ClientSession() as session,
    ):
        traffic = KubernetesTraffic(
            Kubernetes.in_cluster(api_session),
            env["CANARY_NAMESPACE"],
            ingress=env["CANARY_INGRESS"],
            stable=env["STABLE_DEPLOYMENT"],
            canary=env["CANARY_DEPLOYMENT"],
            report=say,
        )
        return await analyse(plan, Prometheus(env["PROMETHEUS_URL"], session), traffic, report=say)


def main() -> int:
    missing = [name for name in VARIABLES if not os.environ.get(name)]
    if missing:
        print(f"configuration error: {', '.join(missing)}: required", file=sys.stderr)
        return 2
    env = {name: os.environ[name] for name in VARIABLES}
    try:
        plan = Plan.from_values(env["CANARY_SERVICE"], json.loads(env["CANARY_ANALYSIS"]))
    except (ValueError, TypeError) as error:
        print(f"configuration error: CANARY_ANALYSIS: {error}", file=sys.stderr)
        return 2
    outcome = asyncio.run(analyse_in_cluster(env, plan))
    return 0 if outcome.decision is Decision.PROMOTED else 1


if __name__ == "__main__":
    sys.exit(main())

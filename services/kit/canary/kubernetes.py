"""The analysis' traffic split on Kubernetes: the canary Ingress' weight annotation and
the two Deployments, through the API with the Job's service account (its Role allows get
and patch of exactly these three objects)."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
VERSION = "app.kubernetes.io/version"
PROMOTED = "agora/promoted-version"  # on the stable Deployment, after a promotion
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
TIMEOUT = aiohttp.ClientTimeout(total=30)


class KubernetesError(RuntimeError):
    pass


class Kubernetes:
    """A few calls of the Kubernetes API, JSON in and out."""

    def __init__(self, url: str, session: aiohttp.ClientSession, token: str = "") -> None:
        self.url, self.session = url.rstrip("/"), session
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    def in_cluster(cls, session: aiohttp.ClientSession) -> Kubernetes:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", session, (ACCOUNT / "token").read_text().strip())

    async def call(self, method: str, path: str, body: Any = None, patch: str = MERGE) -> Any:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = patch
        async with self.session.request(
            method, self.url + path, json=body, headers=headers, timeout=TIMEOUT
        ) as response:
            answer = await response.json(content_type=None)
            if response.status >= 400:
                message = answer.get("message") if isinstance(answer, dict) else answer
                raise KubernetesError(f"{method} {path}: {response.status} {message}")
            return answer


def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))


class KubernetesTraffic:
    """Sets the canary's weight; promotes or rolls back (see templates/canary.yaml)."""

    def __init__(
        self,
        api: Kubernetes,
        namespace: str,
        *,
        ingress: str,
        stable: str,
        canary: str,
        report: Any = print,
        patience: float = 600,
        poll: float = 2,
    ) -> None:
        self.api, self.report, self.patience, self.poll = api, report, patience, poll
        self.ingress = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{ingress}"
        deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        self.stable, self.canary = f"{deployments}/{stable}", f"{deployments}/{canary}"
        self.canary_ready = False

    async def set_weight(self, weight: int) -> None:
        if not self.canary_ready:  # no weight for a canary that cannot answer yet
            await self.wait_available(self.canary)
            self.canary_ready = True
        await self.api.call(
            "PATCH", self.ingress, {"metadata": {"annotations": {WEIGHT: str(weight)}}}
        )

    async def rollback(self) -> None:
        await self.api.call("PATCH", self.ingress, {"metadata": {"annotations": {WEIGHT: "0"}}})
        await self.api.call("PATCH", self.canary, {"spec": {"replicas": 0}})

    async def promote(self) -> None:
        """Stable's pods take the canary's image, env and version; once they are all
        rolled and available, the canary leaves as in a rollback."""
        canary = await self.api.call("GET", self.canary)
        template = canary["spec"]["template"]
        container = template["spec"]["containers"][0]
        version = template["metadata"]["labels"].get(VERSION, "")
        patch = {
            "metadata": {"annotations": {PROMOTED: version}},
            "spec": {
                "template": {
                    "metadata": {
                        "labels": {VERSION: version},
                        "annotations": template["metadata"].get("annotations", {}),
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": container["name"],
                                "image": container["image"],
                                "envFrom": container.get("envFrom", []),
                            }
                        ]
                    },
                }
            },
        }
        await self.api.call("PATCH", self.stable, patch, patch=STRATEGIC)
        self.report(f"stable rolls to {container['image']} ({version})")
        await self.wait_available(self.stable, rolled=True)
        await self.rollback()

    async def wait_available(self, path: str, *, rolled: bool = False) -> None:
        deadline = time.monotonic() + self.patience
        while True:
            deployment = await self.api.call("GET", path)
            spec, status = deployment["spec"], deployment.get("status", {})
            wanted = spec.get("replicas", 1)
            done = status.get("availableReplicas", 0) >= wanted and (
                not rolled
                or (
                    status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
                    and status.get("updatedReplicas", 0) >= wanted
                    and status.get("replicas", 0) == wanted
                )
            )
            if done:
                return
            if time.monotonic() > deadline:
                raise KubernetesError(f"{path}: not available after {self.patience:.0f} s")
            await asyncio.sleep(self.poll)

"""The cluster side of the analysis against a small stand-in for the Kubernetes API (the
three objects the Job's Role allows, merge and strategic-merge patches as the API server
applies them to these fields): which calls it makes, and what it leaves behind."""

from __future__ import annotations

import copy

import aiohttp
import pytest
from aiohttp import web

from services.kit.canary.kubernetes import (
    MERGE,
    STRATEGIC,
    WEIGHT,
    Kubernetes,
    KubernetesError,
    KubernetesTraffic,
)

NS = "agora"
INGRESS = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/agora-catalog-canary"
STABLE = f"/apis/apps/v1/namespaces/{NS}/deployments/catalog"
CANARY = f"/apis/apps/v1/namespaces/{NS}/deployments/catalog-canary"


def deployment(name: str, image: str, version: str, replicas: int) -> dict:
    return {
        "metadata": {"name": name, "generation": 1, "annotations": {}},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {
                    "labels": {
                        "app.kubernetes.io/name": name,
                        "app.kubernetes.io/version": version,
                    },
                    "annotations": {"checksum/env": f"sum-of-{name}"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "catalog",
                            "image": image,
                            "envFrom": [{"configMapRef": {"name": f"{name}-env"}}],
                            "ports": [{"containerPort": 8000}],
                        }
                    ]
                },
            },
        },
        "status": {
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
            "replicas": replicas,
            "observedGeneration": 1,
        },
    }


def merge(target: dict, patch: dict, strategic: bool) -> None:
    for key, value in patch.items():
        if key == "containers" and strategic:
            by_name = {c["name"]: c for c in target[key]}
            for container in value:
                merge(by_name[container["name"]], container, strategic)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value, strategic)
        else:
            target[key] = copy.deepcopy(value)


@pytest.fixture
async def cluster(aiohttp_server):
    objects = {
        INGRESS: {
            "metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary": "true", WEIGHT: "0"}}
        },
        STABLE: deployment("catalog", "agora:v1", "v1", 2),
        CANARY: deployment("catalog-canary", "agora:v2", "v2", 1),
    }
    calls: list[tuple[str, str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if request.headers.get("Authorization") != "Bearer secret":
            return web.json_response({"message": "Unauthorized"}, status=401)
        if path not in objects:
            return web.json_response({"message": "forbidden by the Role"}, status=403)
        calls.append((request.method, path, request.headers.get("Content-Type", "")))
        if request.method == "PATCH":
            strategic = request.headers["Content-Type"] == STRATEGIC
            merge(objects[path], await request.json(), strategic)
            obj = objects[path]
            if "spec" in obj and "status" in obj:  # the Deployment controller, at once
                obj["metadata"]["generation"] += 1
                replicas = obj["spec"]["replicas"]
                obj["status"] = {
                    "availableReplicas": replicas,
                    "updatedReplicas": replicas,
                    "replicas": replicas,
                    "observedGeneration": obj["metadata"]["generation"],
                }
        return web.json_response(objects[path])

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handle)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        api = Kubernetes(f"http://127.0.0.1:{server.port}", session, token="secret")
        traffic = KubernetesTraffic(
            api,
            NS,
            ingress="agora-catalog-canary",
            stable="catalog",
            canary="catalog-canary",
            report=lambda _: None,
            poll=0.01,
        )
        yield traffic, objects, calls


async def test_set_weight_patches_the_canary_ingress_annotation(cluster):
    traffic, objects, calls = cluster
    await traffic.set_weight(25)
    assert objects[INGRESS]["metadata"]["annotations"][WEIGHT] == "25"
    assert (
        objects[INGRESS]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
    )
    assert ("PATCH", INGRESS, MERGE) in calls


async def test_rollback_sends_nothing_more_to_the_canary(cluster):
    traffic, objects, _ = cluster
    await traffic.set_weight(50)
    await traffic.rollback()
    assert objects[INGRESS]["metadata"]["annotations"][WEIGHT] == "0"
    assert objects[CANARY]["spec"]["replicas"] == 0
    assert objects[STABLE]["spec"]["template"]["spec"]["containers"][0]["image"] == "agora:v1"


async def test_promote_gives_stable_the_canarys_image_env_and_version(cluster):
    traffic, objects, _ = cluster
    await traffic.promote()
    stable = objects[STABLE]
    container = stable["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "agora:v2"
    assert container["envFrom"] == [{"configMapRef": {"name": "catalog-canary-env"}}]
    assert container["ports"] == [{"containerPort": 8000}]  # the rest of it unchanged
    labels = stable["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "v2"
    assert labels["app.kubernetes.io/name"] == "catalog"  # the selector's labels stay
    assert stable["metadata"]["annotations"]["agora/promoted-version"] == "v2"
    assert stable["spec"]["replicas"] == 2
    assert objects[CANARY]["spec"]["replicas"] == 0
    assert objects[INGRESS]["metadata"]["annotations"][WEIGHT] == "0"


async def test_a_canary_that_never_becomes_available_is_an_error(cluster):
    traffic, objects, _ = cluster
    objects[CANARY]["status"]["availableReplicas"] = 0
    traffic.patience = 0.05
    with pytest.raises(KubernetesError):
        await traffic.set_weight(10)
    assert objects[INGRESS]["metadata"]["annotations"][WEIGHT] == "0"


async def test_objects_beyond_the_role_are_refused(cluster):
    traffic, _, _ = cluster
    with pytest.raises(KubernetesError, match="403"):
        await traffic.api.call("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/orders")

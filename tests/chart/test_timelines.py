"""timelines in the chart: two replicas, Redis and no database, posts and graph as its
upstreams, its ingress route, and NetworkPolicies that let it reach exactly those."""

from __future__ import annotations

from .conftest import Rendered
from .test_ingress import ingress_paths
from .test_network import INGRESS_CONTROLLER, allowed, pods


def test_two_replicas_with_a_disruption_budget(default_render: Rendered):
    deployment = default_render.get("Deployment", "timelines")
    assert deployment["spec"]["replicas"] == 2
    assert default_render.get("PodDisruptionBudget", "timelines")["spec"]["maxUnavailable"] == 1


def test_redis_posts_and_graph_and_no_database(default_render: Rendered):
    env = default_render.env_of(default_render.get("Deployment", "timelines"))
    assert env["POSTS_URL"] == "http://posts:8000" and env["GRAPH_URL"] == "http://graph:8000"
    assert env["REDIS_URL"] and "DATABASE_URL" not in env
    assert env["HOME_TIMELINE_CAP"] == "800" and env["FANOUT_MAX_FOLLOWERS"] == "5000"
    assert "AUTH_PUBLIC_KEY_FILE" in env and "AUTH_PRIVATE_KEY_FILE" not in env
    job = default_render.get("Job", "agora-migrate")
    commands = [c["command"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert ["agora-migrate", "timelines"] not in commands


def test_the_ingress_routes_timelines(default_render: Rendered):
    routes: dict[str, str] = {}
    for ingress in default_render.of_kind("Ingress"):
        routes.update(ingress_paths(ingress))
    assert routes["/api/v1/timelines"] == "timelines"


def test_timelines_reaches_posts_and_graph_and_nothing_else(default_render: Rendered):
    endpoints = pods(default_render)
    port = {w.name: w.port for w in default_render.workloads}
    for callee in default_render.workloads:
        reach = allowed(default_render, endpoints["timelines"], endpoints[callee.name], callee.port)
        assert reach == (callee.name in ("posts", "graph", "engagement")), (
            f"timelines -> {callee.name}"
        )
    assert allowed(default_render, INGRESS_CONTROLLER, endpoints["timelines"], port["timelines"])

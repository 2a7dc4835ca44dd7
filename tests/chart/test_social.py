"""The social network's services in the chart (posts, graph): their Deployments, their
databases and events, the routes the ingress gives them, and the NetworkPolicies that
follow their upstreams (the generic rules are in test_objects.py and test_network.py;
these name the new objects, so a values.yaml edit that drops one fails here)."""

from __future__ import annotations

import pytest

from .conftest import Rendered
from .test_ingress import ingress_paths
from .test_network import INGRESS_CONTROLLER, allowed, pods

SOCIAL = ("posts", "graph")


@pytest.mark.parametrize("name", SOCIAL)
def test_each_runs_two_replicas_with_a_disruption_budget(default_render: Rendered, name):
    deployment = default_render.get("Deployment", name)
    assert deployment["spec"]["replicas"] == 2
    pdb = default_render.get("PodDisruptionBudget", name)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


@pytest.mark.parametrize(("name", "stream"), [("posts", "posts.events"), ("graph", "graph.events")])
def test_each_has_its_database_its_stream_users_and_the_public_key(
    default_render: Rendered, name, stream
):
    env = default_render.env_of(default_render.get("Deployment", name))
    assert env["EVENTS_STREAM"] == stream
    assert env["USERS_URL"] == "http://users:8000"
    assert env["DATABASE_URL"].endswith(f"@agora-postgresql:5432/{name}") and env["REDIS_URL"]
    assert "AUTH_PUBLIC_KEY_FILE" in env and "AUTH_PRIVATE_KEY_FILE" not in env
    job = default_render.get("Job", "agora-migrate")
    commands = [c["command"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert ["agora-migrate", name] in commands


def test_the_ingress_routes_posts_short_links_and_graph(default_render: Rendered):
    routes: dict[str, str] = {}
    for ingress in default_render.of_kind("Ingress"):
        routes.update(ingress_paths(ingress))
    assert routes["/api/v1/posts"] == "posts" and routes["/s"] == "posts"
    assert routes["/api/v1/graph"] == "graph"


# posts also asks engagement for a post's counts (issue 11).
CALLEES = {"posts": {"users", "engagement"}, "graph": {"users"}}


def test_posts_and_graph_reach_users_and_nothing_else(default_render: Rendered):
    endpoints = pods(default_render)
    port = {w.name: w.port for w in default_render.workloads}
    for name in SOCIAL:
        for callee in default_render.workloads:
            reach = allowed(default_render, endpoints[name], endpoints[callee.name], callee.port)
            assert reach == (callee.name in CALLEES[name]), f"{name} -> {callee.name}"
        assert allowed(default_render, INGRESS_CONTROLLER, endpoints[name], port[name])
    callers_of_users = {
        w.name
        for w in default_render.workloads
        if allowed(default_render, endpoints[w.name], endpoints["users"], port["users"])
    }
    assert {"posts", "graph"} <= callers_of_users
    assert "catalog" not in callers_of_users

"""engagement and search in the chart: two replicas each, their databases, streams and
routes, and NetworkPolicies that let them reach posts and users and nothing else (and
timelines and posts reach engagement for counts)."""

from __future__ import annotations

import pytest

from .conftest import Rendered
from .test_ingress import ingress_paths
from .test_network import INGRESS_CONTROLLER, allowed, pods

CALLEES = {"engagement": {"posts", "users"}, "search": {"posts", "users"}}


@pytest.mark.parametrize("name", sorted(CALLEES))
def test_two_replicas_a_database_and_redis(default_render: Rendered, name):
    deployment = default_render.get("Deployment", name)
    assert deployment["spec"]["replicas"] == 2
    env = default_render.env_of(deployment)
    assert env["DATABASE_URL"].endswith(f"@agora-postgresql:5432/{name}") and env["REDIS_URL"]
    assert env["POSTS_URL"] == "http://posts:8000" and env["USERS_URL"] == "http://users:8000"
    assert env["POSTS_EVENTS_STREAM"] == "posts.events"
    job = default_render.get("Job", "agora-migrate")
    commands = [c["command"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert ["agora-migrate", name] in commands


def test_the_ingress_routes_them(default_render: Rendered):
    routes: dict[str, str] = {}
    for ingress in default_render.of_kind("Ingress"):
        routes.update(ingress_paths(ingress))
    for prefix in ("/api/v1/likes", "/api/v1/comments", "/api/v1/engagement"):
        assert routes[prefix] == "engagement"
    assert routes["/api/v1/search"] == "search"


def test_they_reach_posts_and_users_and_nothing_else(default_render: Rendered):
    endpoints = pods(default_render)
    port = {w.name: w.port for w in default_render.workloads}
    for name, callees in CALLEES.items():
        for callee in default_render.workloads:
            reach = allowed(default_render, endpoints[name], endpoints[callee.name], callee.port)
            assert reach == (callee.name in callees), f"{name} -> {callee.name}"
        assert allowed(default_render, INGRESS_CONTROLLER, endpoints[name], port[name])
    callers = {
        w.name
        for w in default_render.workloads
        if allowed(default_render, endpoints[w.name], endpoints["engagement"], port["engagement"])
    }
    assert {"posts", "timelines"} <= callers and "search" not in callers

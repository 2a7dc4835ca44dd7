"""Tracing through the ingress (docs/tracing.md): one order is one trace across the
ingress, orders, users, catalog, their SQL and the event notifications consumed.

`make integration` runs devstack with AGORA_TRACING=1: every service exports to
devstack's own receiver, whose API (TRACES_URL) these tests read, as others read
Prometheus'."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest

from .orders_helpers import make_product, make_user, notifications_of, wait_for

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@pytest.fixture(scope="module")
def traces() -> httpx.Client:
    url = os.environ.get("TRACES_URL")
    if not url:
        pytest.fail("TRACES_URL is not set: run these through `make integration` (AGORA_TRACING=1)")
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client


def trace_spans(traces: httpx.Client, trace_id: str, *, until) -> list[dict]:
    def complete() -> list[dict] | None:
        resp = traces.get(f"/api/traces/{trace_id}")
        spans = resp.json() if resp.status_code == 200 else []
        return spans if until(spans) else None

    return wait_for(complete, patience=20, what=f"the spans of trace {trace_id}")


def test_one_order_is_one_trace_across_every_hop(agora, traces, unique):
    product = make_product(agora, f"Traced lamp {unique}", quantity=5, price="3.50")
    user = make_user(agora, f"Traced {unique}")
    # No traceparent and no X-Request-ID from the client: the ingress starts the trace,
    # its request id is the trace id (devstack/render.py, traceparent_maps).
    resp = agora.post(
        "/api/v1/orders", json={"product_id": product, "quantity": 2, "user_id": user}
    )
    assert resp.status_code == 201, resp.text
    order = resp.json()
    trace_id = resp.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), trace_id
    wait_for(lambda: notifications_of(agora, order["id"]), patience=20, what="the notification")

    def services_of(spans: list[dict]) -> set[str]:
        return {span["service"] for span in spans}

    spans = trace_spans(
        traces,
        trace_id,
        until=lambda spans: (
            {"orders", "users", "catalog", "notifications"} <= services_of(spans)
            # each service exports in its own batches: the publish span (orders' relay)
            # may come after the consumer's
            and {"producer", "consumer"} <= {span["kind"] for span in spans}
        ),
    )
    by_id = {span["span_id"]: span for span in spans}
    assert len(by_id) == len(spans)
    assert {span["trace_id"] for span in spans} == {trace_id}

    # The root: orders' server span, child of the ingress's (never exported) span.
    (root,) = [s for s in spans if s["kind"] == "server" and s["service"] == "orders"]
    assert root["name"] == "POST /api/v1/orders"
    assert root["parent_span_id"] not in by_id
    assert root["attributes"]["http.response.status_code"] == 201
    assert root["attributes"]["agora.request_id"] == trace_id

    def parent(span: dict) -> dict:
        return by_id[span["parent_span_id"]]

    # orders -> users and orders -> catalog: a client span in orders, whose child is the
    # upstream's server span (the traceparent went through the Service's nginx).
    for service in ("users", "catalog"):
        served = [s for s in spans if s["service"] == service and s["kind"] == "server"]
        assert served, f"no server span of {service}"
        for span in served:
            call = parent(span)
            assert call["kind"] == "client" and call["service"] == "orders"
            assert call["name"].endswith(f" {service}")
            assert parent(call)["span_id"] == root["span_id"]

    # SQL under orders' request and catalog's, each a child of a span of its service.
    sql = [s for s in spans if s["attributes"].get("db.system.name") == "postgresql"]
    assert {s["service"] for s in sql} >= {"orders", "catalog"}
    for span in sql:
        assert parent(span)["service"] == span["service"]

    # The order.created event: orders' relay publishes it in a producer span, child of
    # the request that wrote it; notifications' consumer span is the publish span's child
    # (parents, not links), and its own SQL is under it.
    (consumed,) = [s for s in spans if s["kind"] == "consumer"]
    assert consumed["service"] == "notifications"
    assert consumed["attributes"]["agora.event_type"] == "order.created"
    published = parent(consumed)
    assert published["kind"] == "producer" and published["service"] == "orders"
    assert published["name"] == "orders.events publish"
    assert parent(published)["span_id"] == root["span_id"]
    assert published["start_ns"] >= root["start_ns"]
    assert any(s["parent_span_id"] == consumed["span_id"] for s in sql)


def test_the_access_line_names_the_trace_of_its_request(agora, traces, unique):
    """The request id and trace id agree between orders' access line and the trace."""
    run_dir = os.environ.get("AGORA_RUN_DIR")
    if not run_dir:
        pytest.fail("AGORA_RUN_DIR is not set: the access lines are devstack's log files")
    request_id = f"trace-{unique}"
    resp = agora.get("/api/v1/orders", params={"limit": 1}, headers={"X-Request-ID": request_id})
    assert resp.status_code == 200

    def access_line() -> dict | None:
        for log in Path(run_dir, "logs").glob("orders-*.log"):
            for text in log.read_text(errors="replace").splitlines():
                if request_id in text and '"logger":"access"' in text:
                    return json.loads(text)
        return None

    line = wait_for(access_line, patience=10, what="orders' access line")
    spans = trace_spans(traces, line["trace_id"], until=bool)
    (server,) = [s for s in spans if s["span_id"] == line["span_id"]]
    assert server["service"] == "orders" and server["kind"] == "server"
    assert server["attributes"]["agora.request_id"] == request_id
    assert server["name"] == "GET /api/v1/orders"


def test_a_client_traceparent_is_continued(agora, traces):
    trace_id, parent_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    resp = agora.get(
        "/api/v1/products",
        params={"limit": 1},
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
    )
    assert resp.status_code == 200
    spans = trace_spans(
        traces, trace_id, until=lambda spans: any(s["kind"] == "server" for s in spans)
    )
    (server,) = [s for s in spans if s["kind"] == "server"]
    assert server["service"] == "catalog" and server["parent_span_id"] == parent_id
    assert TRACEPARENT.match(f"00-{trace_id}-{server['span_id']}-01")

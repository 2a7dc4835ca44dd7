"""Every replica of a service down: the ingress itself answers, in the error shape."""

from __future__ import annotations

import time

from devstack.topology import workloads

# devstack's nginx marks a replica that failed as down for fail_timeout (2 s): service
# comes back within that, not at the instant the replicas answer their probes again.
RECOVERY_SECONDS = 10


def test_no_replica_answering_is_a_503_in_shape_then_service_again(stack, agora):
    calc = next(w for w in workloads() if w.name == "calc")
    replicas = [f"calc-{index}" for index in range(calc.replicas)]
    try:
        for name in replicas:
            stack.stop(name)
        resp = agora.post(
            "/api/v1/calc/sum", json={"numbers": [1, 2]}, headers={"X-Request-ID": "f-503"}
        )
        assert resp.status_code == 503, resp.text
        assert resp.json() == {
            "error": "Service unavailable: no replica answered; try again",
            "code": "unavailable",
            "details": [],
        }
        assert resp.headers["Retry-After"] == "1"
        assert resp.headers["X-Request-ID"] == "f-503"
    finally:
        stack.start_ready(replicas)
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (resp := agora.post("/api/v1/calc/sum", json={"numbers": [1, 2]})).status_code == 503:
        assert time.monotonic() < deadline, "calc did not come back behind the ingress"
        time.sleep(0.25)
    assert resp.json() == {"sum": 3}

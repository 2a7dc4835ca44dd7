"""SIGTERM a catalog replica while requests flow through the ingress: nothing fails."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx


class Traffic:
    """Clients with keep-alive connections sending reads and writes until stopped."""

    def __init__(self, agora_url: str, product_id: int, clients: int = 4) -> None:
        self.agora_url = agora_url
        self.product_id = product_id
        self.stopped = threading.Event()
        self.failures: list[str] = []
        self.answered = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(clients)]

    def run(self, number: int) -> None:
        with httpx.Client(base_url=self.agora_url, timeout=10) as client:
            sent = 0
            while not self.stopped.is_set():
                sent += 1
                if sent % 5 == 0:  # writes too: a retry by the proxy would not be safe
                    resp = client.post(
                        "/api/v1/products",
                        json={"name": f"t{number}-{sent}", "price": 1, "quantity": 1},
                    )
                    ok = resp.status_code == 201
                else:
                    resp = client.get(f"/api/v1/products/{self.product_id}")
                    ok = resp.status_code == 200
                with self.lock:
                    self.answered += 1
                    if not ok:
                        self.failures.append(
                            f"{resp.request.method} {resp.status_code} {resp.text[:100]}"
                        )

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()


def test_sigterm_under_traffic_loses_nothing(agora, agora_url, stack):
    product_id = agora.post(
        "/api/v1/products", json={"name": "Steady", "price": 1, "quantity": 1}
    ).json()["id"]
    replica = "catalog-0"
    old_pid = stack.pid(replica)
    log_before = len(stack.log("supervisord"))

    with Traffic(agora_url, product_id) as traffic:
        time.sleep(1.0)
        os.kill(old_pid, signal.SIGTERM)
        new_pid = stack.wait_running(replica, other_than=old_pid)
        stack.wait_ready(stack.port(replica))
        time.sleep(1.0)  # traffic reaches the restarted replica too

    assert traffic.failures == [], traffic.failures[:10]
    assert traffic.answered > 100
    assert new_pid != old_pid
    exits = stack.log("supervisord")[log_before:]
    assert f"exited: {replica} (exit status 0; expected)" in exits, exits

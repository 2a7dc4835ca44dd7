"""devstack's token keypair: made once under the run directory, the private key given
to the signers only."""

from __future__ import annotations

from devstack import render
from devstack.layout import Layout
from devstack.stack import ensure_auth_keys
from devstack.topology import load_values, workloads
from services.kit.auth import key_id, load_private_key, load_public_keys


def test_the_keypair_is_made_once_and_kept(tmp_path):
    layout = Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)
    ensure_auth_keys(layout)
    private, public = layout.auth_dir / "private.pem", layout.auth_dir / "public.pem"
    first = private.read_bytes()
    assert private.stat().st_mode & 0o777 == 0o600
    assert layout.auth_dir.stat().st_mode & 0o777 == 0o700
    ensure_auth_keys(layout)  # `up` again
    assert private.read_bytes() == first
    key = load_private_key(private)
    assert list(load_public_keys(public)) == [key_id(key.public_key())]


def test_only_the_signers_get_the_private_key(tmp_path, monkeypatch):
    monkeypatch.delenv("AGORA_VALUES_EXTRA", raising=False)
    layout = Layout(run_dir=tmp_path, ingress_port=43080, port_base=43000)
    services = workloads(load_values())
    urls = layout.service_urls(services)
    dsns = {w.name: "postgresql://x@127.0.0.1/x" for w in services}
    signers, verifiers = [], []
    for replica in layout.replicas(services):
        env = render.replica_env(layout, replica, urls, dsns)
        if "AUTH_PRIVATE_KEY_FILE" in env:
            signers.append(replica.workload.name)
        if env.get("AUTH_PUBLIC_KEY_FILE") == str(layout.auth_dir / "public.pem"):
            verifiers.append(replica.workload.name)
    assert set(signers) == {"users"}
    # every service verifies but those that need no key (crawler-worker fetches what
    # strangers name: it holds none)
    assert set(verifiers) == {w.name for w in services if w.auth != "none"}
    assert "crawler-worker" not in verifiers and "calc" in verifiers

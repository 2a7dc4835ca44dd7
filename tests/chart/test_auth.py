"""The token keypair in the chart: generated, its public half given to every service that
verifies, its private key mounted into the signer (users) only."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from services.kit.auth import key_id, load_public_keys

from .conftest import Rendered, render

SECRET, PUBLIC = "agora-auth-signing", "agora-auth-public"


def secret_volumes(pod: dict) -> dict[str, str]:
    """volume name -> Secret name, for the Secret volumes of a pod."""
    return {
        v["name"]: v["secret"]["secretName"]
        for v in pod["spec"].get("volumes", [])
        if "secret" in v
    }


def mounted_file(rendered: Rendered, deployment: dict, path: str) -> tuple[str, str]:
    """(volume kind, object name) of the volume a file path lives in, and that the file
    is one of the object's keys."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in pod["containers"][0]["volumeMounts"]:
        if path.startswith(mount["mountPath"] + "/"):
            assert mount["readOnly"] is True
            volume, key = volumes[mount["name"]], path.removeprefix(mount["mountPath"] + "/")
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                assert key in rendered.get("Secret", name)["data"]
                assert [item["path"] for item in volume["secret"]["items"]] == [key]
                return "secret", name
            name = volume["configMap"]["name"]
            assert key in rendered.get("ConfigMap", name)["data"]
            return "configMap", name
    raise AssertionError(f"{path} is not mounted")


def test_the_public_certificate_carries_the_private_keys_public_half(rendered: Rendered):
    secret = rendered.get("Secret", SECRET)["data"]
    private = load_pem_private_key(base64.b64decode(secret["private.pem"]), password=None)
    public = rendered.get("ConfigMap", PUBLIC)["data"]["public.pem"]
    assert base64.b64decode(secret["public.pem"]).decode() == public
    certificate = x509.load_pem_x509_certificate(public.encode())  # as sprig makes it
    assert key_id(certificate.public_key()) == key_id(private.public_key())


def test_the_kit_reads_the_charts_public_key_file(default_render: Rendered, tmp_path):
    path = tmp_path / "public.pem"
    path.write_text(default_render.get("ConfigMap", PUBLIC)["data"]["public.pem"])
    assert len(load_public_keys(path)) == 1


def test_every_verifier_gets_the_public_key_and_only_signers_the_private(rendered: Rendered):
    for workload in rendered.workloads:
        deployment = rendered.get("Deployment", workload.name)
        env = rendered.env_of(deployment)
        if workload.auth == "none":
            assert "AUTH_PUBLIC_KEY_FILE" not in env
        else:
            assert mounted_file(rendered, deployment, env["AUTH_PUBLIC_KEY_FILE"]) == (
                "configMap",
                PUBLIC,
            )
        if workload.auth == "sign":
            assert mounted_file(rendered, deployment, env["AUTH_PRIVATE_KEY_FILE"]) == (
                "secret",
                SECRET,
            )
        else:
            assert "AUTH_PRIVATE_KEY_FILE" not in env
    signers = sorted(w.name for w in rendered.workloads if w.auth == "sign")
    assert signers == ["users"]
    verifiers = {w.name for w in rendered.workloads if w.auth == "verify"}
    assert {"orders", "catalog", "notifications"} <= verifiers


def test_no_other_pod_mounts_the_private_key(rendered: Rendered):
    holders = [
        owner["metadata"]["name"]
        for owner, pod in rendered.pod_templates()
        if SECRET in secret_volumes(pod).values()
    ]
    # users, and its canary when it has one: the same service, signing as stable does
    signing = ["users"] + [
        f"{w.name}-canary" for w in rendered.workloads if w.canary and w.auth == "sign"
    ]
    assert sorted(holders) == sorted(signing)
    for owner, pod in rendered.pod_templates():  # nor reads it through the environment
        for container in pod["spec"]["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef", {})
                assert ref.get("name") != SECRET, owner["metadata"]["name"]


def test_the_keypair_is_generated_not_kept_in_values(default_render: Rendered):
    again = render("again-auth", [])
    first = default_render.get("Secret", SECRET)["data"]["private.pem"]
    assert again.get("Secret", SECRET)["data"]["private.pem"] != first  # no lookup here
    assert "PRIVATE KEY" not in str(default_render.values)


def test_without_auth_there_is_no_keypair():
    rendered = render(
        "no-auth", [], "--set", "default.auth=none", "--set", "services.users.auth=none"
    )
    assert rendered.find("Secret", SECRET) is None
    assert rendered.find("ConfigMap", PUBLIC) is None
    for deployment in rendered.of_kind("Deployment"):
        names = {v["name"] for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
        assert not names & {"auth-public", "auth-signing"}

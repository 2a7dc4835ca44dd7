"""socialcompat in the chart: off by default, and then nothing of it exists (no route,
no credential, no internal routes in users); on, its credential is a Secret mounted by
users and socialcompat only, kept across upgrades, and NOTES.txt warns."""

from __future__ import annotations

import base64

from .conftest import CHART, RELEASE, helm
from .test_auth import mounted_file

SECRET = "agora-impersonation"
CREDENTIAL = "/etc/agora/impersonation/credential"


def deployments(rendered) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}


def ingress_paths(rendered) -> set[str]:
    return {
        path["path"]
        for ingress in rendered.of_kind("Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


def test_off_by_default_with_nothing_of_it_rendered(default_render):
    assert "socialcompat" not in deployments(default_render)
    assert default_render.find("Secret", SECRET) is None
    assert not [p for p in ingress_paths(default_render) if p.startswith("/wrk2-api")]
    for name, deployment in deployments(default_render).items():
        assert "IMPERSONATION_CREDENTIAL_FILE" not in default_render.env_of(deployment), name


def test_on_the_credential_is_mounted_by_users_and_socialcompat_only(renders):
    rendered = renders["socialcompat"]
    secret = rendered.get("Secret", SECRET)
    assert len(base64.b64decode(secret["data"]["credential"])) >= 32
    holders = set()
    for name, deployment in deployments(rendered).items():
        env = rendered.env_of(deployment)
        if "IMPERSONATION_CREDENTIAL_FILE" in env:
            assert env["IMPERSONATION_CREDENTIAL_FILE"] == CREDENTIAL
            assert mounted_file(rendered, deployment, CREDENTIAL) == ("secret", SECRET)
            holders.add(name)
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        if name not in ("users", "socialcompat"):
            assert SECRET not in {v.get("secret", {}).get("secretName") for v in volumes}
    assert holders == {"users", "socialcompat"}
    assert "/wrk2-api" in ingress_paths(rendered)
    assert not [p for p in ingress_paths(rendered) if p.startswith("/internal")]


def test_notes_warn_only_when_it_is_on():
    def notes(*extra: str) -> str:
        return helm("install", RELEASE, CHART, "--dry-run", *extra).stdout.split("NOTES:", 1)[1]

    assert "WARNING: socialcompat is enabled" in notes(
        "--set", "services.socialcompat.enabled=true"
    )
    assert "socialcompat" not in notes()

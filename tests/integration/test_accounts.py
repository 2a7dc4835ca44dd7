"""Accounts and bearer tokens through the ingress: register, log in, /me, lookups, the
failed-login limit and every way a token is refused (the kit checks tokens the same way in
every service: tests/unit/kit/test_auth.py; expired tokens are tested there, as only users
holds the key that could sign one)."""

from __future__ import annotations

import base64

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PASSWORD = "correct horse battery"


def register(agora, username: str, **fields) -> dict:
    resp = agora.post(
        "/api/v1/users", json={"name": "Ana", "username": username, "password": PASSWORD, **fields}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"/api/v1/users/{resp.json()['id']}"
    return resp.json()


def login(agora, username: str, password: str = PASSWORD):
    return agora.post("/api/v1/auth/login", json={"username": username, "password": password})


@pytest.fixture
def account(agora, unique) -> tuple[dict, str]:
    """A new account and its token."""
    user = register(agora, f"u_{unique}")
    resp = login(agora, user["username"])
    assert resp.status_code == 200, resp.text
    return user, resp.json()["access_token"]


def test_register_login_and_me(agora, unique):
    user = register(agora, f"Ana.{unique}", email=f"ana-{unique}@example.com")
    assert user["username"] == f"Ana.{unique}" and user["age"] is None
    assert "password" not in user and "password_hash" not in user

    resp = login(agora, f"ana.{unique}".upper())  # usernames match in any case
    assert resp.status_code == 200
    token = resp.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600

    me = agora.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200 and me.json() == user
    assert agora.get(f"/api/v1/users/{user['id']}").json() == user


def test_a_username_is_taken_whatever_its_case(agora, unique):
    register(agora, f"bob_{unique}")
    again = agora.post(
        "/api/v1/users", json={"name": "B", "username": f"BOB_{unique}", "password": PASSWORD}
    )
    assert again.status_code == 409 and again.json()["code"] == "conflict"


def test_bad_accounts_are_400(agora, unique):
    for body in (
        {"name": "x", "username": "no", "password": PASSWORD},
        {"name": "x", "username": f"ok_{unique}", "password": "short"},
        {"name": "x", "username": f"ok_{unique}"},
    ):
        resp = agora.post("/api/v1/users", json=body)
        assert resp.status_code == 400 and resp.json()["details"], resp.text
    assert agora.get("/api/v1/users", params={"username": f"ok_{unique}"}).json()["total"] == 0


def test_wrong_credentials_are_one_401_for_all(agora, unique):
    register(agora, f"cid_{unique}")
    wrong = login(agora, f"cid_{unique}", "not the password")
    nobody = login(agora, f"nobody_{unique}", "not the password")
    assert wrong.status_code == nobody.status_code == 401
    assert (
        wrong.json()
        == nobody.json()
        == {
            "error": "Invalid username or password",
            "code": "invalid_credentials",
            "details": [],
        }
    )
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")


def test_failed_logins_per_username_are_limited(agora, unique):
    register(agora, f"lim_{unique}")
    for _ in range(5):  # LOGIN_MAX_FAILURES_PER_USERNAME in values.yaml
        assert login(agora, f"lim_{unique}", "guess").status_code == 401
    limited = login(agora, f"lim_{unique}")
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 300
    assert limited.json()["code"] == "too_many_attempts"


def test_lookups_for_other_services(agora, unique):
    ana, bob = register(agora, f"la_{unique}"), register(agora, f"lb_{unique}")
    found = agora.get("/api/v1/users", params={"username": f"LA_{unique}"}).json()
    assert found == {"items": [ana], "total": 1}
    batch = agora.get("/api/v1/users", params={"ids": f"{bob['id']},987654321,{ana['id']}"})
    assert [u["id"] for u in batch.json()["items"]] == [bob["id"], ana["id"]]
    names = agora.get("/api/v1/users", params={"usernames": f"lb_{unique},la_{unique}"})
    assert [u["id"] for u in names.json()["items"]] == [bob["id"], ana["id"]]
    too_many = agora.get("/api/v1/users", params={"ids": ",".join(map(str, range(1, 102)))})
    assert too_many.status_code == 400


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(agora, headers: dict[str, str], code: str) -> str:
    resp = agora.get("/api/v1/users/me", headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.json()["code"] == code
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="agora"')
    return challenge


def test_every_auth_error_is_401_in_the_error_shape(agora, account):
    user, token = account
    assert refused(agora, {}, "unauthorized") == 'Bearer realm="agora"'
    for header in ("Basic dXNlcjpwYXNz", "Bearer", f"Bearer {token} extra", "Token x"):
        assert 'error="invalid_request"' in refused(
            agora, {"Authorization": header}, "invalid_request"
        )
    for garbage in ("nonsense", "a.b.c", token[:-4] + "AAAA"):  # the last: a bad signature
        challenge = refused(agora, {"Authorization": f"Bearer {garbage}"}, "invalid_token")
        assert 'error="invalid_token"' in challenge

    head, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    someone_else = {**claims, "sub": str(user["id"] + 1)}
    tampered = f"{head}.{b64(orjson.dumps(someone_else))}.{signature}"
    refused(agora, {"Authorization": f"Bearer {tampered}"}, "invalid_token")

    header = orjson.loads(base64.urlsafe_b64decode(head + "=="))
    none_alg = f"{b64(orjson.dumps({**header, 'alg': 'none'}))}.{payload}."
    refused(agora, {"Authorization": f"Bearer {none_alg}"}, "invalid_token")

    stranger = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    refused(agora, {"Authorization": f"Bearer {stranger}"}, "invalid_token")


def test_the_openapi_document_declares_the_bearer_scheme(agora):
    document = agora.get("/api/v1/users/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = document["paths"]["/api/v1/users/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]

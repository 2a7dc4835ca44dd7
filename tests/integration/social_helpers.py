"""Accounts and their tokens for the social network's integration tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_account(agora: httpx.Client, username: str) -> Account:
    """Register an account and log it in."""
    resp = agora.post(
        "/api/v1/users", json={"name": username, "username": username, "password": PASSWORD}
    )
    assert resp.status_code == 201, resp.text
    user = resp.json()
    resp = agora.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return Account(user["id"], user["username"], resp.json()["access_token"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused_tokens(account: Account) -> list[tuple[dict[str, str], str]]:
    """(headers, expected code) of every kind of refused credentials that a client
    without the signing key can make: none, malformed, garbage, a bad signature, claims
    tampered with, alg none, another key's signature."""
    token = account.token
    head, payload, signature = token.split(".")
    header = orjson.loads(base64.urlsafe_b64decode(head + "=="))
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    someone_else = {**claims, "sub": str(account.id + 1)}
    stranger = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    cases = [({}, "unauthorized")]
    for value in ("Basic dXNlcjpwYXNz", "Bearer", f"Bearer {token} extra", "Token x"):
        cases.append(({"Authorization": value}, "invalid_request"))
    for bad in (
        "nonsense",
        "a.b.c",
        token[:-4] + "AAAA",
        f"{head}.{_b64(orjson.dumps(someone_else))}.{signature}",
        f"{_b64(orjson.dumps({**header, 'alg': 'none'}))}.{payload}.",
        stranger,
    ):
        cases.append(({"Authorization": f"Bearer {bad}"}, "invalid_token"))
    return cases

"""Accounts with tokens, and waiting for what events bring, for the integration tests of
engagement and search."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import httpx

PASSWORD = "correct horse battery"
T = TypeVar("T")


@dataclass(frozen=True)
class Member:
    id: int
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def join(agora: httpx.Client, username: str, name: str | None = None) -> Member:
    """A new account, logged in."""
    body = {"name": name or username, "username": username, "password": PASSWORD}
    resp = agora.post("/api/v1/users", json=body)
    assert resp.status_code == 201, resp.text
    user = resp.json()
    for _ in range(3):  # a login is an argon2id hash: on a loaded machine it may time out
        resp = agora.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        if resp.status_code not in (503, 504):
            break
    assert resp.status_code == 200, resp.text
    return Member(user["id"], user["username"], resp.json()["access_token"])


def join_many(agora: httpx.Client, prefix: str, count: int) -> list[Member]:
    # Two at a time: users hashes one password per worker at once (argon2id, ~32 ms).
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda i: join(agora, f"{prefix}{i}"), range(count)))


def post(agora: httpx.Client, author: Member, text: str) -> dict:
    resp = agora.post("/api/v1/posts", json={"text": text}, headers=author.auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


def eventually(check: Callable[[], T | None], patience: float = 15.0) -> T:
    """check()'s first true value, polled; AssertionError after `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not true within {patience} s"
        time.sleep(0.1)

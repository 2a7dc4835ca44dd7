"""Posting, following and reading timelines through the ingress (the timelines tests of
tests/integration and tests/fault; accounts: social_helpers)."""

from __future__ import annotations

import httpx

from tests.integration.orders_helpers import wait_for
from tests.integration.social_helpers import Account

FAN_OUT_PATIENCE = 30.0  # seconds a post may take to reach a follower (a loaded machine)


def compose(agora: httpx.Client, author: Account, text: str) -> dict:
    resp = agora.post("/api/v1/posts", json={"text": text}, headers=author.auth)
    assert resp.status_code == 201, resp.text
    return resp.json()


def follow(agora: httpx.Client, follower: Account, followee_id: int) -> None:
    resp = agora.put(f"/api/v1/graph/following/{followee_id}", headers=follower.auth)
    assert resp.status_code == 204, resp.text


def unfollow(agora: httpx.Client, follower: Account, followee_id: int) -> None:
    resp = agora.delete(f"/api/v1/graph/following/{followee_id}", headers=follower.auth)
    assert resp.status_code == 204, resp.text


def home(agora: httpx.Client, reader: Account, **params: object) -> dict:
    resp = agora.get("/api/v1/timelines/home", params=params, headers=reader.auth)
    assert resp.status_code == 200, resp.text
    return resp.json()


def home_ids(agora: httpx.Client, reader: Account, limit: int = 100) -> list[int]:
    return [post["id"] for post in home(agora, reader, limit=limit)["items"]]


def wait_home(agora: httpx.Client, reader: Account, condition, what: str) -> list[int]:
    """Poll the reader's home timeline (its first 100 ids) until condition(ids) holds."""

    def holds() -> tuple[list[int]] | None:
        ids = home_ids(agora, reader)
        return (ids,) if condition(ids) else None  # a tuple: an empty timeline may be the aim

    (ids,) = wait_for(holds, patience=FAN_OUT_PATIENCE, what=what)
    return ids

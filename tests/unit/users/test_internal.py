"""The internal routes of users (services.kit.impersonation): accounts known by an
external id, their lookups, and a user's token without a password; only with the
credential, and absent from the public document."""

from __future__ import annotations

import pytest

from services.kit.impersonation import HEADER, write_credential
from services.kit.keys import TOKEN_VERIFIER
from services.users.app import create_app


@pytest.fixture
def credential(tmp_path) -> tuple[str, str]:
    path = tmp_path / "credential"
    return str(path), write_credential(path)


@pytest.fixture
async def internal(aiohttp_client, make_settings, credential):
    path, secret = credential
    client = await aiohttp_client(create_app(make_settings(impersonation_credential_file=path)))
    client.secret = secret
    return client


def shown(client) -> dict[str, str]:
    return {HEADER: client.secret}


async def make_account(client, external_id: int, username: str):
    body = {"name": "Dsb", "username": username, "password": f"password_{external_id}"}
    return await client.post(
        "/internal/v1/accounts", json={**body, "external_id": external_id}, headers=shown(client)
    )


async def test_an_account_keeps_its_external_id_and_is_found_by_it(internal):
    resp = await make_account(internal, 0, "username_0")
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert made["external_id"] == 0 and made["username"] == "username_0"
    big = await make_account(internal, 2**63 - 1, "username_big")
    assert big.status == 201
    for query, expected in (
        ("external_ids=9223372036854775807,0,5", [2**63 - 1, 0]),
        (f"ids={made['id']}", [0]),
        ("usernames=USERNAME_0,nobody", [0]),
    ):
        resp = await internal.get(f"/internal/v1/accounts?{query}", headers=shown(internal))
        assert resp.status == 200
        assert [item["external_id"] for item in (await resp.json())["items"]] == expected


async def test_a_taken_username_or_external_id_is_a_409_and_changes_nothing(internal):
    assert (await make_account(internal, 1, "username_1")).status == 201
    assert (await make_account(internal, 2, "USERNAME_1")).status == 409
    assert (await make_account(internal, 1, "username_2")).status == 409
    resp = await internal.get("/internal/v1/accounts?external_ids=1,2", headers=shown(internal))
    assert [item["username"] for item in (await resp.json())["items"]] == ["username_1"]
    resp = await internal.get("/api/v1/users?username=username_2")
    assert (await resp.json())["items"] == []


async def test_a_token_for_a_user_is_a_normal_token(internal):
    account = await (await make_account(internal, 7, "username_7")).json()
    resp = await internal.post(
        "/internal/v1/tokens", json={"user_id": account["id"]}, headers=shown(internal)
    )
    assert resp.status == 200
    token = (await resp.json())["access_token"]
    assert resp.headers["Cache-Control"] == "no-store"
    caller = internal.app[TOKEN_VERIFIER].verify(token)
    assert (caller.id, caller.username) == (account["id"], "username_7")
    me = await internal.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["username"] == "username_7"
    missing = await internal.post(
        "/internal/v1/tokens", json={"user_id": account["id"] + 99}, headers=shown(internal)
    )
    assert missing.status == 404


@pytest.mark.parametrize("header", [None, "", "wrong" * 10])
async def test_without_the_credential_every_internal_route_is_403(internal, header):
    headers = {} if header is None else {HEADER: header}
    calls = [
        internal.post(
            "/internal/v1/accounts",
            json={
                "name": "x",
                "username": "username_9",
                "password": "password_9",
                "external_id": 9,
            },
            headers=headers,
        ),
        internal.get("/internal/v1/accounts?external_ids=9", headers=headers),
        internal.post("/internal/v1/tokens", json={"user_id": 1}, headers=headers),
    ]
    for call in calls:
        resp = await call
        assert resp.status == 403
        assert (await resp.json())["code"] == "forbidden"
    resp = await internal.get("/api/v1/users?username=username_9")
    assert (await resp.json())["items"] == []


async def test_a_users_without_a_credential_has_no_internal_routes(client):
    resp = await client.post("/internal/v1/tokens", json={"user_id": 1}, headers={HEADER: "x" * 40})
    assert resp.status == 404


async def test_the_internal_routes_are_not_in_the_public_document(internal):
    document = await (await internal.get("/api/v1/users/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/internal")]
    assert "/api/v1/auth/login" in document["paths"]

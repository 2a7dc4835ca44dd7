"""Social accounts: registration, login tokens, /me, lookups, failed-login limits, and the
user.created event; passwords never leave the service."""

from __future__ import annotations

import asyncio

import asyncpg
import jsonschema_rs
import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from services.kit.auth import Caller
from services.kit.keys import TOKEN_VERIFIER
from services.kit.ratelimit import client_address
from services.users.app import create_app
from services.users.keys import PASSWORDS
from services.users.passwords import Passwords
from tests.conftest import free_port
from tests.unit.conftest import until

from .conftest import FAST_HASHES


async def register(client, username="ana", password="correct horse", **fields):
    body = {"name": "Ana", "username": username, "password": password, **fields}
    resp = await client.post("/api/v1/users", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def login(client, username="ana", password="correct horse", xff=None):
    headers = {"X-Forwarded-For": xff} if xff else {}
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, headers=headers
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_account_is_created_without_showing_its_password(client, users_dsn):
    resp = await client.post(
        "/api/v1/users", json={"name": "Ana", "username": "Ana_B.1-x", "password": "s3cret pass"}
    )
    assert resp.status == 201
    user = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/users/{user['id']}"
    assert set(user) == {"id", "name", "age", "email", "username", "created_at"}
    assert (user["username"], user["age"], user["email"]) == ("Ana_B.1-x", None, None)
    conn = await asyncpg.connect(users_dsn)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user["id"])
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$") and "s3cret" not in stored


async def test_the_password_is_in_no_answer_and_no_event(client, users_dsn):
    user = await register(client, email="ana@example.com", age=30)
    token = (await (await login(client)).json())["access_token"]
    answers = [
        await (await client.get(f"/api/v1/users/{user['id']}")).text(),
        await (await client.get("/api/v1/users")).text(),
        await (await client.get("/api/v1/users", params={"username": "ana"})).text(),
        await (await client.get("/api/v1/users/me", headers=bearer(token))).text(),
    ]
    conn = await asyncpg.connect(users_dsn)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users")
        (event,) = await conn.fetch("SELECT event_type, payload::text AS payload FROM outbox")
    finally:
        await conn.close()
    for text in [*answers, event["payload"]]:
        assert "correct horse" not in text and stored not in text and "password" not in text
    assert event["event_type"] == "user.created"
    assert orjson.loads(event["payload"]) == {
        "id": user["id"],
        "name": "Ana",
        "username": "ana",
        "age": 30,
        "created_at": user["created_at"],
    }


async def test_user_created_reaches_the_users_stream(client, redis):
    user = await register(client)
    (_, fields), *_ = await until(lambda: redis.xrange("users.events"))
    assert fields[b"type"] == b"user.created"
    assert fields[b"aggregate_id"] == str(user["id"]).encode()


@pytest.mark.parametrize("taken", ["ana", "ANA", "Ana"])
async def test_usernames_are_unique_whatever_their_case(client, taken):
    await register(client, "Ana")
    resp = await client.post(
        "/api/v1/users", json={"name": "B", "username": taken, "password": "another one"}
    )
    assert resp.status == 409
    assert (await resp.json())["error"] == f"The username {taken} is taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ab", "password": "long enough"}, "username"),
        ({"username": "a" * 31, "password": "long enough"}, "username"),
        ({"username": "an a", "password": "long enough"}, "username"),
        ({"username": "ana!", "password": "long enough"}, "username"),
        ({"username": "anä", "password": "long enough"}, "username"),
        ({"username": 5, "password": "long enough"}, "username"),
        ({"username": "ana", "password": "short"}, "password"),
        ({"username": "ana", "password": "x" * 129}, "password"),
        ({"username": "ana"}, "password"),
        ({"password": "long enough", "age": 20}, "username"),
        ({}, "age"),  # a user without an account needs an age, as before
    ],
)
async def test_bad_accounts_are_400_naming_the_field_and_change_nothing(
    client, users_dsn, body, field
):
    resp = await client.post("/api/v1/users", json={"name": "Ana", **body})
    assert resp.status == 400, await resp.text()
    answer = await resp.json()
    assert answer["code"] == "validation_error"
    assert field in {d["field"] for d in answer["details"]}
    assert (await (await client.get("/api/v1/users")).json())["total"] == 0


async def test_plain_users_still_need_their_age_and_work_as_before(client):
    resp = await client.post("/api/v1/users", json={"name": "Ivo", "age": 25})
    assert resp.status == 201
    assert (await resp.json())["username"] is None
    assert (await login(client, "Ivo", "anything at all")).status == 401


async def test_login_answers_a_bearer_token_for_the_user(client, auth_keys):
    user = await register(client, "Ana")
    resp = await login(client, "aNa")  # any case
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert resp.headers["Cache-Control"] == "no-store"
    verifier = client.server.app[TOKEN_VERIFIER]
    assert verifier.verify(body["access_token"]) == Caller(user["id"], "Ana")


async def test_wrong_credentials_are_the_same_401_whether_the_user_exists_or_not(client):
    await register(client)
    wrong_password = await login(client, "ana", "not the password")
    no_such_user = await login(client, "nobody", "not the password")
    for resp in (wrong_password, no_such_user):
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="agora"'
    assert await wrong_password.json() == await no_such_user.json()
    assert (await no_such_user.json()) == {
        "error": "Invalid username or password",
        "code": "invalid_credentials",
        "details": [],
    }


def test_an_unknown_user_is_checked_against_a_dummy_hash():
    """So that its answer takes as long as a wrong password's."""
    passwords = Passwords(time_cost=1, memory_kib=64, parallelism=1, threads=1)
    real, checked = passwords.hasher, []

    class Spy:
        def verify(self, stored, password):
            checked.append(stored)
            return real.verify(stored, password)

    passwords.hasher = Spy()  # type: ignore[assignment]
    assert passwords._verify(None, "whatever") is False
    assert checked == [passwords.dummy]
    assert passwords._verify(real.hash("pw"), "pw") is True
    passwords.close()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "ana"},
        {"password": "x"},
        {"username": "", "password": "x"},
        {"username": "ana", "password": 5},
        {"username": "a" * 31, "password": "x"},
    ],
)
async def test_a_bad_login_body_is_400(client, body):
    resp = await client.post("/api/v1/auth/login", json=body)
    assert resp.status == 400


async def test_me_is_the_signed_in_user(client, auth_keys):
    user = await register(client)
    token = (await (await login(client)).json())["access_token"]
    resp = await client.get("/api/v1/users/me", headers=bearer(token))
    assert resp.status == 200 and await resp.json() == user
    assert (await client.get("/api/v1/users/me")).status == 401
    expired = auth_keys.token(user["id"], "ana", now=0)
    assert (await client.get("/api/v1/users/me", headers=bearer(expired))).status == 401
    gone = await client.get("/api/v1/users/me", headers=auth_keys.header(999, "ghost"))
    assert gone.status == 404


async def test_lookups_by_username_and_in_batches(client):
    ana = await register(client, "Ana")
    bob = await register(client, "bob")
    ivo = await (await client.post("/api/v1/users", json={"name": "Ivo", "age": 20})).json()

    one = await (await client.get("/api/v1/users", params={"username": "ANA"})).json()
    assert one == {"items": [ana], "total": 1}
    none = await (await client.get("/api/v1/users", params={"username": "zed"})).json()
    assert none == {"items": [], "total": 0}

    ids = f"{ivo['id']},999,{ana['id']},{ivo['id']}"  # a missing one, a repeat
    batch = await (await client.get("/api/v1/users", params={"ids": ids})).json()
    assert [u["id"] for u in batch["items"]] == [ivo["id"], ana["id"]] and batch["total"] == 2
    names = await (await client.get("/api/v1/users", params={"usernames": "BOB,zed,ana"})).json()
    assert [u["id"] for u in names["items"]] == [bob["id"], ana["id"]]
    both = {"ids": f"{ana['id']},{ivo['id']}", "usernames": "bob,ana"}  # ana once, first
    both_page = await (await client.get("/api/v1/users", params=both)).json()
    assert [u["id"] for u in both_page["items"]] == [ana["id"], ivo["id"], bob["id"]]
    # 19 digits the document allows, above any id a row can have: missing, left out
    beyond = {"ids": f"9223372036854775808,{ana['id']}"}
    beyond_page = await (await client.get("/api/v1/users", params=beyond)).json()
    assert [u["id"] for u in beyond_page["items"]] == [ana["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"ids": ",".join(str(n) for n in range(1, 102))},  # 101: over the bound
        {"ids": "1,,2"},
        {"ids": "0"},
        {"ids": "a"},
        {"ids": "99999999999999999999"},  # 20 digits: outside the documented pattern
        {"usernames": "ok,no!"},
        {"username": "x"},
        {"ids": "1", "limt": "5"},  # an unknown parameter is named, never ignored
    ],
)
async def test_bad_lookups_are_400_in_the_query(client, params):
    resp = await client.get("/api/v1/users", params=params)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["details"][0]["location"] == "query"


async def test_failed_logins_per_username_are_limited(aiohttp_client, make_settings):
    client = await aiohttp_client(
        create_app(make_settings(login_max_failures_per_username=3, login_failure_window=2))
    )
    await register(client)
    for _ in range(3):
        assert (await login(client, "ana", "wrong password")).status == 401
    limited = await login(client, "ANA", "correct horse")  # even the right password now
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    body = await limited.json()
    assert body["code"] == "too_many_attempts" and body["error"].startswith("Too many")
    assert (await login(client, "ivo", "wrong password")).status == 401  # others are not
    await asyncio.sleep(2.1)  # the window ends
    assert (await login(client)).status == 200


async def test_a_success_resets_the_username_count(aiohttp_client, make_settings):
    client = await aiohttp_client(create_app(make_settings(login_max_failures_per_username=2)))
    await register(client)
    for _ in range(3):
        assert (await login(client, "ana", "wrong password")).status == 401
        assert (await login(client)).status == 200


async def test_failed_logins_per_client_are_limited(aiohttp_client, make_settings):
    client = await aiohttp_client(create_app(make_settings(login_max_failures_per_client=4)))
    await register(client)
    for n in range(4):  # four usernames from one address (the one the ingress saw)
        resp = await login(client, f"guess{n}", "wrong password", xff="203.0.113.9")
        assert resp.status == 401
    assert (await login(client, xff="203.0.113.9")).status == 429
    # the client's own X-Forwarded-For entries are not believed; the ingress' last one is
    assert (await login(client, xff="198.51.100.1, 203.0.113.9")).status == 429
    assert (await login(client, xff="203.0.113.10")).status == 200


async def test_successful_logins_use_up_no_client_budget(aiohttp_client, make_settings):
    client = await aiohttp_client(create_app(make_settings(login_max_failures_per_client=2)))
    await register(client)
    for _ in range(6):
        assert (await login(client, xff="203.0.113.7")).status == 200


def test_the_client_is_who_the_trusted_proxy_saw():
    def request(*xff: str):
        headers = [("X-Forwarded-For", value) for value in xff]
        return make_mocked_request("POST", "/", headers=headers)

    assert client_address(request("1.1.1.1"), 1) == "1.1.1.1"
    assert client_address(request("6.6.6.6, 1.1.1.1"), 1) == "1.1.1.1"
    assert client_address(request("6.6.6.6", "1.1.1.1, 2.2.2.2"), 2) == "1.1.1.1"
    assert client_address(request("1.1.1.1"), 0) != "1.1.1.1"  # no proxy: the peer


async def test_login_with_redis_away_is_503(aiohttp_client, make_settings):
    client = await aiohttp_client(
        create_app(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    )
    resp = await login(client)
    assert resp.status == 503  # failed logins cannot be counted: none are tried


async def test_a_hash_made_with_older_parameters_is_replaced_at_login(
    aiohttp_client, make_settings, users_dsn
):
    old = await aiohttp_client(create_app(make_settings()))
    user = await register(old)
    stronger = await aiohttp_client(
        create_app(make_settings(**{**FAST_HASHES, "password_hash_memory_kib": 128}))
    )
    assert (await login(stronger)).status == 200
    conn = await asyncpg.connect(users_dsn)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user["id"])
    finally:
        await conn.close()
    assert "m=128," in stored
    assert not stronger.server.app[PASSWORDS].needs_rehash(stored)
    assert (await login(stronger)).status == 200


async def test_the_openapi_document_shows_login_and_me(client):
    document = await (await client.get("/api/v1/users/openapi.json")).json()
    me = document["paths"]["/api/v1/users/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}] and "401" in me["responses"]
    assert "400" in me["responses"]  # a malformed If-None-Match, though /me takes no parameter
    login_op = document["paths"]["/api/v1/auth/login"]["post"]
    assert {"200", "400", "401", "429"} <= set(login_op["responses"])
    assert "security" not in login_op
    assert "password" not in document["components"]["schemas"]["User"]["properties"]


def test_users_needs_its_private_key(make_settings):
    with pytest.raises(SystemExit, match="AUTH_PRIVATE_KEY_FILE"):
        create_app(make_settings(auth_private_key_file=None))


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Acc", "username": "acc", "password": "correct horse"},
        {"name": "Acc", "username": "acc", "password": "correct horse", "age": None},
        {"name": "Plain", "age": 30},
        {"name": "Plain", "age": 30, "username": None, "password": None},
        {"name": "No", "username": None, "password": "correct horse"},
        {"name": "No", "username": "nopass"},
        {"name": "No", "password": "correct horse", "age": 30},
        {"name": "No"},
        {"name": "No", "age": None},
    ],
)
async def test_the_document_states_which_new_users_are_accepted(client, body):
    # schemathesis generates bodies from the document: its verdict must be the handler's
    document = await (await client.get("/api/v1/users/openapi.json")).json()
    schema = {**document["components"]["schemas"]["UserIn"], "components": document["components"]}
    valid = jsonschema_rs.validator_for(schema).is_valid(body)  # schemathesis' validator
    resp = await client.post("/api/v1/users", json=body)
    assert (resp.status == 201) == valid, (valid, resp.status, await resp.text())


async def test_a_users_own_data_is_revalidated_in_their_client_only(client):
    user = await register(client)
    token = (await (await login(client)).json())["access_token"]
    for path, headers in ((f"/api/v1/users/{user['id']}", {}), ("/api/v1/users/me", bearer(token))):
        resp = await client.get(path, headers=headers)
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "private, no-cache"
        etag = resp.headers["ETag"]
        fresh = await client.get(path, headers={**headers, "If-None-Match": etag})
        assert fresh.status == 304 and fresh.headers["ETag"] == etag
        assert await fresh.read() == b""
    # a validator is no way around the token
    anonymous = await client.get("/api/v1/users/me", headers={"If-None-Match": etag})
    assert anonymous.status == 401

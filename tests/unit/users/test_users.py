"""users: every endpoint and error path, against real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

PEOPLE = [("Ivo", 25), ("Ana", 17), ("Marko", 19), ("Maja", 16), ("Iva", 22)]


async def create(client, name: str, age: int, email: str | None = None) -> dict:
    body = {"name": name, "age": age} | ({"email": email} if email else {})
    resp = await client.post("/api/v1/users", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def count_users(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM users")
    finally:
        await conn.close()


async def test_create_then_get(client):
    resp = await client.post(
        "/api/v1/users", json={"name": "Ivo", "age": 25, "email": "ivo@example.com"}
    )
    assert resp.status == 201
    user = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/users/{user['id']}"
    assert (user["name"], user["age"], user["email"]) == ("Ivo", 25, "ivo@example.com")
    assert await (await client.get(resp.headers["Location"])).json() == user


async def test_email_is_optional(client):
    user = await create(client, "Ana", 17)
    assert user["email"] is None


async def test_duplicate_email_is_409_whatever_the_case(client, users_dsn):
    await create(client, "Ivo", 25, "ivo@example.com")
    resp = await client.post(
        "/api/v1/users", json={"name": "Other", "age": 30, "email": "IVO@example.com"}
    )
    assert resp.status == 409
    assert (await resp.json())["code"] == "conflict"
    assert await count_users(users_dsn) == 1


async def test_list_with_min_age_and_pagination(client):
    for name, age in PEOPLE:
        await create(client, name, age)
    body = await (await client.get("/api/v1/users", params={"min_age": "19"})).json()
    assert [u["name"] for u in body["items"]] == ["Ivo", "Marko", "Iva"]
    assert body["total"] == 3
    page = await (await client.get("/api/v1/users", params={"limit": "2", "offset": "2"})).json()
    assert [u["name"] for u in page["items"]] == ["Marko", "Maja"]
    assert page["total"] == 5


async def test_adults_are_18_or_more(client):
    for name, age in [*PEOPLE, ("Eighteen", 18)]:
        await create(client, name, age)
    body = await (await client.get("/api/v1/users/adults")).json()
    assert sorted(u["name"] for u in body["items"]) == ["Eighteen", "Iva", "Ivo", "Marko"]
    assert all(u["age"] >= 18 for u in body["items"])


async def test_missing_user_is_404_naming_it(client):
    resp = await client.get("/api/v1/users/6")
    assert resp.status == 404
    assert (await resp.json())["error"] == "User 6 does not exist"


@pytest.mark.parametrize("ident", ["abc", "-3", "0", "1e3"])
async def test_non_integer_id_is_400(client, ident):
    resp = await client.get(f"/api/v1/users/{ident}")
    assert resp.status == 400


@pytest.mark.parametrize("params", [{"min_age": "-1"}, {"min_age": "old"}, {"limit": "1000"}])
async def test_bad_query_is_400(client, params):
    resp = await client.get("/api/v1/users", params=params)
    assert resp.status == 400
    assert (await resp.json())["details"][0]["location"] == "query"


BAD_BODIES = [
    '{"name": "Ivo", "age": ',
    '[{"name": "Ivo", "age": 25}]',
    '{"name": "Ivo"}',
    '{"age": 25}',
    '{"name": "Ivo", "age": "25"}',
    '{"name": "Ivo", "age": 25.5}',
    '{"name": "Ivo", "age": -1}',
    '{"name": "Ivo", "age": 151}',
    '{"name": "Ivo", "age": 99999999999999999999}',
    '{"name": "Ivo", "age": 25, "email": "not-an-email"}',
    '{"name": "Ivo", "age": 25, "email": 5}',
    '{"name": null, "age": 25}',
    '{"name": "Ivo", "age": 25, "admin": true}',
]


@pytest.mark.parametrize("raw", BAD_BODIES)
async def test_bad_input_is_400_and_changes_nothing(client, users_dsn, raw):
    resp = await client.post(
        "/api/v1/users", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert set(body) == {"error", "code", "details"}
    assert await count_users(users_dsn) == 0


async def test_unicode_and_sql_looking_names_are_stored_literally(client):
    for name in ["Željko Šarić", "'; DELETE FROM users; --"]:
        user = await create(client, name, 30)
        assert (await (await client.get(f"/api/v1/users/{user['id']}")).json())["name"] == name

"""graph: follow and unfollow (idempotent, with their events), counts, followers and
followees pages, the big accounts filter, against real users, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import pytest

from services.graph.app import create_app
from tests.unit.social_conftest import count_rows, dead_url, outbox_events


async def follow(client, headers, user_id, status=204):
    resp = await client.put(f"/api/v1/graph/following/{user_id}", headers=headers)
    assert resp.status == status, await resp.text()
    return resp


async def unfollow(client, headers, user_id):
    resp = await client.delete(f"/api/v1/graph/following/{user_id}", headers=headers)
    assert resp.status == 204, await resp.text()


async def counts(client, user_id):
    return await (await client.get(f"/api/v1/graph/{user_id}")).json()


async def test_follow_is_idempotent_with_one_event(client, people, as_user, graph_dsn):
    ana, bob = people[:2]
    await follow(client, as_user(ana), bob)
    await follow(client, as_user(ana), bob)
    assert await counts(client, bob) == {"user_id": bob, "followers": 1, "following": 0}
    assert await counts(client, ana) == {"user_id": ana, "followers": 0, "following": 1}
    assert await outbox_events(graph_dsn) == [
        ("follow.created", str(ana), {"follower_id": ana, "followee_id": bob})
    ]


async def test_unfollow_is_idempotent_with_one_event(client, people, as_user, graph_dsn):
    ana, bob = people[:2]
    await unfollow(client, as_user(ana), bob)  # nothing to undo: no event
    await follow(client, as_user(ana), bob)
    await unfollow(client, as_user(ana), bob)
    await unfollow(client, as_user(ana), bob)
    assert await counts(client, bob) == {"user_id": bob, "followers": 0, "following": 0}
    assert [kind for kind, _, _ in await outbox_events(graph_dsn)] == [
        "follow.created",
        "follow.deleted",
    ]
    page = await (await client.get(f"/api/v1/graph/{bob}/followers")).json()
    assert page == {"items": [], "next": None}


async def test_the_relay_publishes_to_the_graph_stream(client, people, as_user, redis):
    await follow(client, as_user(people[0]), people[1])
    for _ in range(200):
        if entries := await redis.xrange("graph.events"):
            break
        await asyncio.sleep(0.05)
    (_, fields), *_ = entries
    assert (
        fields[b"type"] == b"follow.created" and fields[b"aggregate_id"] == str(people[0]).encode()
    )


async def test_following_yourself_is_a_400_and_changes_nothing(client, people, as_user, graph_dsn):
    resp = await follow(client, as_user(people[0]), people[0], status=400)
    body = await resp.json()
    assert body["code"] == "validation_error" and body["details"][0]["field"] == "user_id"
    assert await count_rows(graph_dsn, "follows") == 0


async def test_an_unknown_user_is_a_404_and_changes_nothing(client, people, as_user, graph_dsn):
    resp = await follow(client, as_user(people[0]), 999_999, status=404)
    assert (await resp.json())["error"] == "User 999999 does not exist"
    assert (
        await count_rows(graph_dsn, "follows") == 0 and await count_rows(graph_dsn, "outbox") == 0
    )


async def test_users_unavailable_is_a_503_and_changes_nothing(
    aiohttp_client, graph_settings, people, as_user, graph_dsn
):
    client = await aiohttp_client(create_app(graph_settings(users_url=dead_url())))
    resp = await follow(client, as_user(people[0]), people[1], status=503)
    assert (await resp.json())["code"] == "unavailable"
    assert await count_rows(graph_dsn, "follows") == 0
    await unfollow(client, as_user(people[0]), people[1])  # unfollow never asks users


async def test_followers_page_newest_first_without_gaps_or_repeats(client, people, as_user):
    star, fans = people[0], people[1:]
    for fan in fans:
        await follow(client, as_user(fan), star)
    seen, cursor = [], None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = await (await client.get(f"/api/v1/graph/{star}/followers", params=params)).json()
        assert all(set(item) == {"id", "since"} for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(fans))
    assert (await counts(client, star))["followers"] == len(fans)


async def test_following_pages_ids_and_the_big_accounts(client, people, as_user):
    me, big, small, other = people[:4]
    for fan in people[4:]:
        await follow(client, as_user(fan), big)  # big: 4 followers, then me
    await follow(client, as_user(me), big)
    await follow(client, as_user(me), small)
    await follow(client, as_user(me), other)
    await follow(client, as_user(other), small)  # small: 2 followers
    page = await (await client.get(f"/api/v1/graph/{me}/following")).json()
    assert [item["id"] for item in page["items"]] == [other, small, big] and page["next"] is None
    first = await (await client.get(f"/api/v1/graph/{me}/following", params={"limit": "2"})).json()
    rest = await (
        await client.get(
            f"/api/v1/graph/{me}/following", params={"limit": "2", "cursor": first["next"]}
        )
    ).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [other, small, big]
    params = {"min_followers": "2", "limit": "1000"}
    bigs = await (await client.get(f"/api/v1/graph/{me}/following", params=params)).json()
    assert [item["id"] for item in bigs["items"]] == [small, big]
    params = {"min_followers": "5"}
    bigs = await (await client.get(f"/api/v1/graph/{me}/following", params=params)).json()
    assert [item["id"] for item in bigs["items"]] == [big]
    ids = await (await client.get(f"/api/v1/graph/{me}/following/ids")).json()
    assert ids == {"ids": [other, small, big]}
    ids = await (
        await client.get(f"/api/v1/graph/{me}/following/ids", params={"limit": "1"})
    ).json()
    assert ids == {"ids": [other]}


async def test_mutual_follows_at_once_neither_deadlock_nor_miscount(
    aiohttp_client, graph_settings, people, as_user
):
    # Deadlines far above a loaded machine's: only a deadlock (or a miscount) fails this.
    client = await aiohttp_client(
        create_app(graph_settings(request_timeout=120, upstream_timeout=60))
    )
    people = people[:6]
    pairs = [(a, b) for a in people for b in people if a != b]
    await asyncio.gather(*(follow(client, as_user(a), b) for a, b in pairs))
    for user in people:
        assert await counts(client, user) == {
            "user_id": user,
            "followers": len(people) - 1,
            "following": len(people) - 1,
        }
    await asyncio.gather(*(unfollow(client, as_user(a), b) for a, b in pairs))
    for user in people:
        assert (await counts(client, user))["followers"] == 0


async def test_a_user_without_follows_has_zeros(client):
    assert await counts(client, 42) == {"user_id": 42, "followers": 0, "following": 0}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/graph/1/followers", {"limit": "0"}, "limit"),
        ("/api/v1/graph/1/followers", {"limit": "1001"}, "limit"),
        ("/api/v1/graph/1/followers", {"limit": "ten"}, "limit"),
        ("/api/v1/graph/1/followers", {"cursor": "0"}, "cursor"),
        ("/api/v1/graph/1/followers", {"cursor": "abc"}, "cursor"),
        ("/api/v1/graph/1/followers", {"cursor": "-5"}, "cursor"),
        ("/api/v1/graph/1/following", {"limit": "1001"}, "limit"),
        ("/api/v1/graph/1/following", {"cursor": "1" * 19}, "cursor"),
        ("/api/v1/graph/1/following", {"min_followers": "-1"}, "min_followers"),
        ("/api/v1/graph/1/following", {"min_followers": "x"}, "min_followers"),
        ("/api/v1/graph/1/following/ids", {"limit": "0"}, "limit"),
        ("/api/v1/graph/1/following/ids", {"limit": "5001"}, "limit"),
        ("/api/v1/graph/0", {}, "user_id"),
        ("/api/v1/graph/x/followers", {}, "user_id"),
        ("/api/v1/graph/-1/following", {}, "user_id"),
        ("/api/v1/graph/9223372036854775808/following/ids", {}, "user_id"),
    ],
)
async def test_bad_parameters_are_400s_naming_them(client, path, params, field):
    resp = await client.get(path, params=params)
    assert resp.status == 400, await resp.text()
    assert field in [d["field"] for d in (await resp.json())["details"]]


@pytest.mark.parametrize("user_id", ["0", "abc", "-3", "1.5", "9223372036854775808"])
async def test_a_bad_user_id_to_follow_is_a_400_and_changes_nothing(
    client, people, as_user, graph_dsn, user_id
):
    for method in ("PUT", "DELETE"):
        resp = await client.request(
            method, f"/api/v1/graph/following/{user_id}", headers=as_user(people[0])
        )
        assert resp.status == 400 and (await resp.json())["details"][0]["field"] == "user_id"
    assert await count_rows(graph_dsn, "outbox") == 0


async def test_following_needs_a_valid_token(client, auth_keys, people, graph_dsn):
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Token abc"},
        {"Authorization": f"Bearer {auth_keys.token(people[0], 'x', now=0)}"},  # expired
    ):
        for method in ("PUT", "DELETE"):
            resp = await client.request(
                method, f"/api/v1/graph/following/{people[1]}", headers=headers
            )
            assert resp.status == 401 and "WWW-Authenticate" in resp.headers
    assert await count_rows(graph_dsn, "follows") == 0


async def test_reading_needs_no_token(client, people):
    assert (await client.get(f"/api/v1/graph/{people[0]}/followers")).status == 200


async def test_the_document_states_every_route(client):
    document = await (await client.get("/api/v1/graph/openapi.json")).json()
    assert set(document["paths"]) == {
        "/api/v1/graph/following/{user_id}",
        "/api/v1/graph/{user_id}",
        "/api/v1/graph/{user_id}/followers",
        "/api/v1/graph/{user_id}/following",
        "/api/v1/graph/{user_id}/following/ids",
    }
    operations = document["paths"]["/api/v1/graph/following/{user_id}"]
    assert operations["put"]["security"] == operations["delete"]["security"] == [{"bearerAuth": []}]

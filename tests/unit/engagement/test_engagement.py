"""engagement against real users and posts apps: likes, comments, counts, deletion."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.unit.conftest import until


@pytest.fixture
async def ana(network):
    return await network.account("ana")


@pytest.fixture
async def post(network, ana):
    return await network.post(ana, "Hello #world")


async def likes(client, post_id, headers=None):
    resp = await client.get(f"/api/v1/likes/{post_id}", headers=headers or {})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_like_and_unlike_are_idempotent(client, network, ana, post):
    bob = await network.account("bob")
    for _ in range(2):
        resp = await client.put(f"/api/v1/likes/{post['id']}", headers=bob["headers"])
        assert resp.status == 204
    assert await likes(client, post["id"], bob["headers"]) == {"count": 1, "liked_by_me": True}
    assert await likes(client, post["id"], ana["headers"]) == {"count": 1, "liked_by_me": False}
    assert await likes(client, post["id"]) == {"count": 1, "liked_by_me": None}
    for _ in range(2):
        resp = await client.delete(f"/api/v1/likes/{post['id']}", headers=bob["headers"])
        assert resp.status == 204
    assert await likes(client, post["id"], bob["headers"]) == {"count": 0, "liked_by_me": False}


async def test_liking_needs_a_token_and_an_existing_post(client, ana, post):
    resp = await client.put(f"/api/v1/likes/{post['id']}")
    assert resp.status == 401
    resp = await client.put("/api/v1/likes/999999", headers=ana["headers"])
    assert resp.status == 404
    assert (await resp.json())["error"] == "Post 999999 does not exist"
    for bad in ("abc", "0", "-1", "99999999999999999999"):
        resp = await client.put(f"/api/v1/likes/{bad}", headers=ana["headers"])
        assert resp.status == 400, bad
        assert (await resp.json())["details"][0]["field"] == "post_id"
    assert await likes(client, post["id"]) == {"count": 0, "liked_by_me": None}


async def test_a_post_not_seen_in_events_is_checked_at_posts(client, network, ana, post, databases):
    import asyncpg

    conn = await asyncpg.connect(databases["engagement"])
    try:  # as if posts.events had not reached engagement yet
        await until(lambda: conn.fetchval("SELECT 1 FROM posts WHERE post_id = $1", post["id"]))
        await conn.execute("DELETE FROM posts")
        resp = await client.put(f"/api/v1/likes/{post['id']}", headers=ana["headers"])
        assert resp.status == 204
        row = await conn.fetchrow("SELECT * FROM posts WHERE post_id = $1", post["id"])
        assert (row["author_id"], row["like_count"]) == (ana["id"], 1)
    finally:
        await conn.close()


async def test_200_users_liking_at_once_count_200_and_one_user_50_times_counts_1(
    client, network, post
):
    users = [await network.account(f"user{i:03d}") for i in range(200)]
    answers = await asyncio.gather(
        *(client.put(f"/api/v1/likes/{post['id']}", headers=user["headers"]) for user in users)
    )
    assert [resp.status for resp in answers] == [204] * 200
    assert (await likes(client, post["id"]))["count"] == 200
    answers = await asyncio.gather(
        *(
            client.delete(f"/api/v1/likes/{post['id']}", headers=users[0]["headers"])
            for _ in range(50)
        )
    )
    assert {resp.status for resp in answers} == {204}
    assert (await likes(client, post["id"]))["count"] == 199
    other = await network.post(users[1], "another")
    answers = await asyncio.gather(
        *(
            client.put(f"/api/v1/likes/{other['id']}", headers=users[0]["headers"])
            for _ in range(50)
        )
    )
    assert {resp.status for resp in answers} == {204}
    assert (await likes(client, other["id"]))["count"] == 1


async def test_likers_newest_first_by_cursor(client, network, post):
    users = [await network.account(f"liker{i}") for i in range(5)]
    for user in users:
        await client.put(f"/api/v1/likes/{post['id']}", headers=user["headers"])
    resp = await client.get(f"/api/v1/likes/{post['id']}/users", params={"limit": 3})
    first = await resp.json()
    assert [item["username"] for item in first["items"]] == ["liker4", "liker3", "liker2"]
    assert set(first["items"][0]) == {"id", "username", "liked_at"}
    resp = await client.get(
        f"/api/v1/likes/{post['id']}/users", params={"limit": 3, "cursor": first["next"]}
    )
    second = await resp.json()
    assert [item["username"] for item in second["items"]] == ["liker1", "liker0"]
    assert second["next"] is None
    resp = await client.get(f"/api/v1/likes/{post['id']}/users", params={"limit": 101})
    assert resp.status == 400


async def comment(client, user, post_id, text):
    return await client.post(
        "/api/v1/comments", json={"post_id": post_id, "text": text}, headers=user["headers"]
    )


async def test_a_comment_resolves_mentions_and_is_counted(client, network, ana, post):
    bob = await network.account("bob")
    resp = await comment(client, bob, post["id"], "  nice one @Ana, says @nobody  ")
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/comments/{made['id']}"
    assert made["text"] == "nice one @Ana, says @nobody"
    assert made["author"] == {"id": bob["id"], "username": "bob"}
    assert made["mentions"] == [{"id": ana["id"], "username": "ana"}]
    assert made["post_id"] == post["id"]
    resp = await client.get(f"/api/v1/comments/{made['id']}")
    assert await resp.json() == made
    resp = await client.get("/api/v1/engagement/counts", params={"post_ids": str(post["id"])})
    assert (await resp.json())["items"] == [
        {"post_id": post["id"], "like_count": 0, "comment_count": 1, "liked_by_me": None}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x"}, "post_id"),
        ({"post_id": 1}, "text"),
        ({"post_id": "1", "text": "x"}, "post_id"),
        ({"post_id": 0, "text": "x"}, "post_id"),
        ({"post_id": 1, "text": ""}, "text"),
        ({"post_id": 1, "text": "   \n "}, "text"),
        ({"post_id": 1, "text": "x" * 1001}, "text"),
        ({"post_id": 1, "text": "bell\x07"}, "text"),
        ({"post_id": 1, "text": 5}, "text"),
        ({"post_id": 1, "text": "x", "extra": 1}, "extra"),
    ],
)
async def test_bad_comments_are_400_and_change_nothing(client, ana, post, body, field):
    body = {**body, "post_id": post["id"]} if body.get("post_id") == 1 else body
    resp = await client.post("/api/v1/comments", json=body, headers=ana["headers"])
    assert resp.status == 400, await resp.text()
    assert field in {detail["field"] for detail in (await resp.json())["details"]}
    resp = await client.get("/api/v1/comments", params={"post_id": post["id"]})
    assert (await resp.json())["items"] == []


async def test_a_comment_of_1000_characters_is_taken(client, ana, post):
    resp = await comment(client, ana, post["id"], "é" * 1000)
    assert resp.status == 201
    resp = await comment(client, ana, 999999, "on nothing")
    assert resp.status == 404


async def test_a_thread_reads_oldest_first_by_cursor(client, ana, post):
    made = [await (await comment(client, ana, post["id"], f"c{i}")).json() for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"post_id": post["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/api/v1/comments", params=params)).json()
        seen += [item["text"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
        # a comment deleted between pages neither shifts nor repeats the next page
        if len(seen) == 2:
            await client.delete(f"/api/v1/comments/{made[2]['id']}", headers=ana["headers"])
    assert seen == ["c0", "c1", "c3", "c4"]
    resp = await client.get("/api/v1/comments", params={"post_id": 999999})
    assert resp.status == 404
    resp = await client.get("/api/v1/comments")
    assert resp.status == 400


async def test_a_comment_is_deleted_by_its_author_or_the_posts_author(client, network, ana, post):
    bob, eve = await network.account("bob"), await network.account("eve")
    first = await (await comment(client, bob, post["id"], "first")).json()
    second = await (await comment(client, bob, post["id"], "second")).json()
    resp = await client.delete(f"/api/v1/comments/{first['id']}", headers=eve["headers"])
    assert resp.status == 403
    resp = await client.delete(f"/api/v1/comments/{first['id']}")
    assert resp.status == 401
    resp = await client.delete(f"/api/v1/comments/{first['id']}", headers=bob["headers"])
    assert resp.status == 204
    resp = await client.delete(f"/api/v1/comments/{second['id']}", headers=ana["headers"])
    assert resp.status == 204
    resp = await client.delete(f"/api/v1/comments/{second['id']}", headers=ana["headers"])
    assert resp.status == 404
    resp = await client.get("/api/v1/engagement/counts", params={"post_ids": str(post["id"])})
    assert (await resp.json())["items"][0]["comment_count"] == 0


async def test_counts_of_a_batch_in_order_with_liked_by_me(client, network, ana, post):
    other = await network.post(ana, "second post")
    await client.put(f"/api/v1/likes/{other['id']}", headers=ana["headers"])
    await comment(client, ana, post["id"], "hi")
    ids = f"{other['id']},999999,{post['id']}"
    resp = await client.get(
        "/api/v1/engagement/counts", params={"post_ids": ids}, headers=ana["headers"]
    )
    assert resp.status == 200
    assert (await resp.json())["items"] == [
        {"post_id": other["id"], "like_count": 1, "comment_count": 0, "liked_by_me": True},
        {"post_id": 999999, "like_count": 0, "comment_count": 0, "liked_by_me": False},
        {"post_id": post["id"], "like_count": 0, "comment_count": 1, "liked_by_me": False},
    ]
    for bad in ("", "a", "1,,2", ",".join(str(i) for i in range(1, 102)), "0"):
        resp = await client.get("/api/v1/engagement/counts", params={"post_ids": bad})
        assert resp.status == 400, bad


async def test_a_deleted_post_loses_its_likes_and_comments(client, network, ana, post, databases):
    await client.put(f"/api/v1/likes/{post['id']}", headers=ana["headers"])
    made = await (await comment(client, ana, post["id"], "soon gone")).json()
    await network.delete(ana, post)

    async def gone():
        resp = await client.get(f"/api/v1/likes/{post['id']}")
        return resp.status == 404

    await until(gone)
    resp = await client.put(f"/api/v1/likes/{post['id']}", headers=ana["headers"])
    assert resp.status == 404
    assert (await comment(client, ana, post["id"], "late")).status == 404
    assert (await client.get(f"/api/v1/comments/{made['id']}")).status == 404
    resp = await client.get("/api/v1/engagement/counts", params={"post_ids": str(post["id"])})
    assert (await resp.json())["items"][0]["like_count"] == 0
    import asyncpg

    conn = await asyncpg.connect(databases["engagement"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM likes") == 0
        assert await conn.fetchval("SELECT count(*) FROM comments") == 0
    finally:
        await conn.close()


async def test_likes_and_comments_are_announced(client, network, ana, post, redis):
    await client.put(f"/api/v1/likes/{post['id']}", headers=ana["headers"])
    await comment(client, ana, post["id"], "hello @ana")

    async def events():
        entries = await redis.xrange("engagement.events")
        return (
            [(fields[b"type"].decode(), orjson.loads(fields[b"payload"])) for _, fields in entries]
            if len(entries) >= 2
            else None
        )

    (like_type, like), (comment_type, said) = await until(events)
    assert like_type == "like.created" and comment_type == "comment.created"
    assert (like["post_id"], like["user_id"]) == (post["id"], ana["id"])
    assert (said["post_id"], said["author_id"], said["mentions"]) == (
        post["id"],
        ana["id"],
        [ana["id"]],
    )

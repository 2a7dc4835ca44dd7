"""search against real users and posts apps: fed by their events, hydrated by posts."""

from __future__ import annotations

import asyncpg
import pytest

from services.search.query import MAX_TERMS, parse
from services.search.reindex import reindex
from tests.unit.conftest import truncate_all, until


async def hits(client, q, **params):
    resp = await client.get("/api/v1/search/posts", params={"q": q, **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def texts(client, q, **params):
    return [post["text"] for post in (await hits(client, q, **params))["items"]]


async def found(client, q, count):
    async def enough():
        items = await texts(client, q)
        return items if len(items) >= count else None

    return await until(enough)


@pytest.fixture
async def ana(network):
    return await network.account("ana", "Ana Lima")


async def test_words_are_stemmed_and_accents_ignored(client, network, ana):
    await network.post(ana, "The cats are running in the café")
    await network.post(ana, "Dogs only")
    assert await found(client, "cat", 1) == ["The cats are running in the café"]
    assert await texts(client, "RUN cafe") == ["The cats are running in the café"]
    assert await texts(client, "cats dogs") == []  # every term must match


async def test_hashtags_mentions_and_phrases(client, network, ana):
    bob = await network.account("bob")
    await network.post(bob, "loving #Python today, @ana")
    await network.post(bob, "python without the tag")
    await network.post(ana, "today loving it")
    await found(client, "loving", 2)
    assert await texts(client, "#python") == ["loving #Python today, @ana"]
    assert len(await texts(client, "python")) == 2  # the word is in both
    assert await texts(client, "@ana") == ["today loving it", "loving #Python today, @ana"]
    assert await texts(client, '"today loving"') == ["today loving it"]
    assert await texts(client, '"loving today"') == []  # not next to each other


async def test_relevance_then_recency(client, network, ana):
    await network.post(ana, "tea")
    await network.post(ana, "tea tea tea, more tea, #tea")
    await network.post(ana, "tea again")
    items = await found(client, "tea", 3)
    assert items == ["tea tea tea, more tea, #tea", "tea again", "tea"]
    page = await hits(client, "tea", limit=2)
    assert page["next"] == "2"
    rest = await hits(client, "tea", limit=2, offset=2)
    assert [p["text"] for p in rest["items"]] == ["tea"] and rest["next"] is None


async def test_a_deleted_post_never_appears_again(client, network, ana, databases):
    post = await network.post(ana, "ephemeral words")
    await found(client, "ephemeral", 1)
    await network.delete(ana, post)

    async def gone():
        conn = await asyncpg.connect(databases["search"])
        try:
            return await conn.fetchval("SELECT 1 FROM deleted_posts WHERE post_id = $1", post["id"])
        finally:
            await conn.close()

    await until(gone)
    assert await texts(client, "ephemeral") == []


async def test_users_by_prefix_of_username_or_name_and_with_typos(client, network):
    for username, name in [("marko", "Marko Horvat"), ("mara", "Mara Kos"), ("ivo", "Zed")]:
        await network.account(username, name)

    async def users(q):
        resp = await client.get("/api/v1/search/users", params={"q": q})
        assert resp.status == 200
        return [user["username"] for user in (await resp.json())["items"]]

    async def all_indexed():
        return len(await users("ma")) + len(await users("iv")) == 3

    await until(all_indexed)
    assert await users("mar") == ["mara", "marko"]
    assert await users("MARK") == ["marko", "mara"]  # the prefix first, then a near miss
    assert await users("ze") == ["ivo"]  # the name's start
    assert await users("mmarko") == ["marko"]  # a typo: trigram similarity
    assert await users("q") == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"q": ""}, 400),
        ({"q": "   "}, 400),
        ({"q": "x" * 201}, 400),
        ({"q": " ".join(["word"] * (MAX_TERMS + 1))}, 422),
        ({"q": "y" * 101}, 422),
        ({"q": '""'}, 422),
        ({"q": "cat", "limit": 51}, 400),
        ({"q": "cat", "limit": 0}, 400),
        ({"q": "cat", "offset": 1001}, 400),
        ({"q": "the of and"}, 422),  # only stop words: nothing an index can look up
    ],
)
async def test_bounded_queries(client, params, status):
    resp = await client.get("/api/v1/search/posts", params=params)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["code"] in {
        "validation_error",
        "query_invalid",
        "no_searchable_terms",
    }


async def test_the_query_syntax():
    terms = parse('"a phrase" #Tag @Ana. word')
    assert [(t.kind, t.value) for t in terms] == [
        ("phrase", "a phrase"),
        ("tag", "#tag"),
        ("tag", "@ana"),
        ("word", "word"),
    ]


async def test_reindex_rebuilds_a_lost_index_and_drops_what_is_gone(
    client, network, ana, search_settings, databases
):
    kept = await network.post(ana, "kept forever")
    await network.post(ana, "gone soon")
    await found(client, "kept", 1)
    await found(client, "gone", 1)
    conn = await asyncpg.connect(databases["search"])
    try:
        # The index lost, and a stale row of a post that no longer exists at posts.
        await truncate_all(databases["search"])
        await conn.execute(
            "INSERT INTO posts (post_id, author_id, document, created_at)"
            " VALUES (42, 1, to_tsvector('ghost'), now() - interval '1 day')"
        )
        await conn.execute("UPDATE posts SET indexed_at = now() - interval '1 day'")
        listed = await network.posts.get("/api/v1/posts", params={"author_ids": str(ana["id"])})
        gone = next(p for p in (await listed.json())["items"] if p["text"] == "gone soon")
        await network.delete(ana, gone)
        stats = await reindex(search_settings())
        assert stats["posts"] == 1 and stats["users"] == 1 and stats["removed_posts"] == 1
        assert await texts(client, "kept") == ["kept forever"]
        assert await texts(client, "ghost") == []
        ids = await conn.fetch("SELECT post_id FROM posts")
        assert [row["post_id"] for row in ids] == [kept["id"]]
    finally:
        await conn.close()


async def test_index_lag_is_measured(client, network, ana):
    from prometheus_client import REGISTRY

    labels = {"service": "search", "stream": "posts.events"}
    before = REGISTRY.get_sample_value("events_delay_seconds_count", labels) or 0
    await network.post(ana, "measured")
    await found(client, "measured", 1)
    assert REGISTRY.get_sample_value("events_delay_seconds_count", labels) > before

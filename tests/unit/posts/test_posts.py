"""posts: compose (mentions, hashtags, short links), read, delete and the events, against
real users, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiohttp import web

from services.posts.app import create_app
from tests.unit.social_conftest import count_rows, dead_url, outbox_events


async def compose(client, headers, **body):
    resp = await client.post("/api/v1/posts", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_compose_resolves_mentions_hashtags_and_urls(client, as_user, accounts):
    resp = await client.post(
        "/api/v1/posts",
        headers=as_user("ana"),
        json={
            "text": "  Hi @BOB and @nobody, @cy.d. #Cats #cats see https://example.com/a?b=1. \n",
            "media": [{"id": 7, "type": "image"}, {"id": 0, "type": "image/png"}],
        },
    )
    assert resp.status == 201
    post = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/posts/{post['id']}"
    (link,) = post["urls"]
    assert link["original"] == "https://example.com/a?b=1"
    assert link["short"].startswith("/s/") and len(link["short"]) == 14
    assert post["text"] == f"Hi @BOB and @nobody, @cy.d. #Cats #cats see {link['short']}."
    assert post["author"] == {"id": accounts["ana"]["id"], "username": "ana"}
    assert post["mentions"] == [
        {"id": accounts["bob"]["id"], "username": "bob"},
        {"id": accounts["cy.d"]["id"], "username": "cy.d"},
    ]
    assert post["hashtags"] == ["cats"]
    assert post["media"] == [{"id": 7, "type": "image"}, {"id": 0, "type": "image/png"}]
    assert post["reply_to"] is None
    # GET adds the counts (null: no engagement in these tests; tests/unit/engagement has them)
    no_counts = {"like_count": None, "comment_count": None, "liked_by_me": None}
    assert (await (await client.get(f"/api/v1/posts/{post['id']}")).json()) == post | no_counts


async def test_the_short_link_redirects_until_its_post_is_deleted(client, as_user):
    post = await compose(client, as_user("ana"), text="http://example.org/x https://b.example")
    first, second = post["urls"]
    resp = await client.get(first["short"], allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "http://example.org/x"
    resp = await client.get(second["short"], allow_redirects=False)
    assert resp.headers["Location"] == "https://b.example"
    assert (
        await client.delete(f"/api/v1/posts/{post['id']}", headers=as_user("ana"))
    ).status == 204
    resp = await client.get(first["short"], allow_redirects=False)
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"


async def test_an_unknown_code_is_a_404_and_a_malformed_one_a_400(client):
    resp = await client.get("/s/AAAAAAAAAAA", allow_redirects=False)
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    resp = await client.get("/s/short", allow_redirects=False)
    assert resp.status == 400 and (await resp.json())["details"][0]["field"] == "code"


async def test_short_links_take_the_configured_base(aiohttp_client, posts_settings, as_user):
    client = await aiohttp_client(
        create_app(posts_settings(short_link_base="https://agora.example/"))
    )
    post = await compose(client, as_user("ana"), text="go https://example.com")
    assert post["urls"][0]["short"].startswith("https://agora.example/s/")
    assert post["text"] == f"go {post['urls'][0]['short']}"


async def test_ids_sort_by_time_stay_below_2_53_and_encode_created_at(client, as_user):
    posts = [await compose(client, as_user("ana"), text=f"post {n}") for n in range(5)]
    ids = [post["id"] for post in posts]
    assert ids == sorted(ids) and len(set(ids)) == 5 and all(i < 2**53 for i in ids)
    for post in posts:
        created = datetime.fromisoformat(post["created_at"])
        assert int(created.timestamp() * 1000) == post["id"] >> 10
        assert abs((datetime.now(UTC) - created).total_seconds()) < 60


async def test_concurrent_composes_get_distinct_ids(client, as_user):
    posts = await asyncio.gather(
        *(compose(client, as_user("bob"), text=f"at once {n}") for n in range(40))
    )
    assert len({post["id"] for post in posts}) == 40


async def test_post_created_and_deleted_events_go_through_the_outbox(
    client, as_user, accounts, posts_dsn
):
    parent = await compose(client, as_user("bob"), text="first")
    post = await compose(client, as_user("ana"), text="@bob @cy.d hi", reply_to=parent["id"])
    assert post["reply_to"] == parent["id"]
    assert (
        await client.delete(f"/api/v1/posts/{post['id']}", headers=as_user("ana"))
    ).status == 204
    events = await outbox_events(posts_dsn)
    assert [(kind, aggregate) for kind, aggregate, _ in events] == [
        ("post.created", str(parent["id"])),
        ("post.created", str(post["id"])),
        ("post.deleted", str(post["id"])),
    ]
    assert events[1][2] == {
        "post_id": post["id"],
        "author_id": accounts["ana"]["id"],
        "created_at": post["created_at"],
        "mentions": [accounts["bob"]["id"], accounts["cy.d"]["id"]],
        "reply_to": parent["id"],
    }
    assert events[2][2] == {"post_id": post["id"], "author_id": accounts["ana"]["id"]}


async def test_the_relay_publishes_to_the_posts_stream(client, as_user, redis):
    post = await compose(client, as_user("ana"), text="hello")

    async def published():
        return await redis.xrange("posts.events")

    for _ in range(200):
        if entries := await published():
            break
        await asyncio.sleep(0.05)
    (_, fields), *_ = entries
    assert (
        fields[b"type"] == b"post.created" and fields[b"aggregate_id"] == str(post["id"]).encode()
    )


async def test_only_the_author_deletes_and_a_deleted_post_is_gone(client, as_user, posts_dsn):
    post = await compose(client, as_user("ana"), text="mine")
    resp = await client.delete(f"/api/v1/posts/{post['id']}", headers=as_user("bob"))
    assert resp.status == 403 and (await resp.json())["code"] == "forbidden"
    assert (await client.get(f"/api/v1/posts/{post['id']}")).status == 200
    assert (
        await client.delete(f"/api/v1/posts/{post['id']}", headers=as_user("ana"))
    ).status == 204
    resp = await client.get(f"/api/v1/posts/{post['id']}")
    assert (
        resp.status == 404 and (await resp.json())["error"] == f"Post {post['id']} does not exist"
    )
    assert (
        await client.delete(f"/api/v1/posts/{post['id']}", headers=as_user("ana"))
    ).status == 404
    assert [kind for kind, _, _ in await outbox_events(posts_dsn)].count("post.deleted") == 1


async def test_a_batch_keeps_the_order_asked_and_leaves_out_missing_ones(client, as_user):
    a, b, c = [await compose(client, as_user("ana"), text=t) for t in "abc"]
    await client.delete(f"/api/v1/posts/{b['id']}", headers=as_user("ana"))
    asked = f"{c['id']},999,9223372036854775808,{b['id']},{a['id']}"  # > 2^63-1: missing too
    resp = await client.get("/api/v1/posts", params={"ids": asked})
    page = await resp.json()
    assert [p["id"] for p in page["items"]] == [c["id"], a["id"]] and page["next"] is None


async def test_authors_posts_page_newest_first_without_gaps_or_repeats(client, as_user, accounts):
    mine = [
        await compose(client, as_user(name), text=f"{name} {n}")
        for n in range(4)
        for name in ("ana", "bob", "cy.d")
    ]
    wanted = sorted(
        (p["id"] for p in mine if p["author"]["username"] in ("ana", "bob")), reverse=True
    )
    authors = f"{accounts['ana']['id']},{accounts['bob']['id']}"
    seen, before = [], None
    while True:
        params = {"author_ids": authors, "limit": "3"} | ({"before": before} if before else {})
        page = await (await client.get("/api/v1/posts", params=params)).json()
        seen += [p["id"] for p in page["items"]]
        before = page["next"]
        if before is None:
            break
        await compose(client, as_user("ana"), text="newer, not in these pages")
    assert seen == wanted


async def test_reply_to_a_missing_post_is_a_422_and_stores_nothing(client, as_user, posts_dsn):
    resp = await client.post(
        "/api/v1/posts", json={"text": "re", "reply_to": 12345}, headers=as_user("ana")
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["details"][0]["field"] == "reply_to"
    assert await count_rows(posts_dsn, "posts") == 0 and await count_rows(posts_dsn, "outbox") == 0


async def test_users_unavailable_is_a_503_and_stores_nothing(
    aiohttp_client, posts_settings, as_user, posts_dsn
):
    client = await aiohttp_client(create_app(posts_settings(users_url=dead_url())))
    resp = await client.post("/api/v1/posts", json={"text": "hi @bob"}, headers=as_user("ana"))
    assert resp.status == 503 and (await resp.json())["code"] == "unavailable"
    assert await count_rows(posts_dsn, "posts") == 0
    # Without a mention, users is not asked.
    assert (
        await client.post("/api/v1/posts", json={"text": "hi"}, headers=as_user("ana"))
    ).status == 201


async def test_users_answering_nonsense_is_a_502(aiohttp_client, posts_settings, as_user):
    async def failing(request: web.Request) -> web.Response:
        return web.json_response({}, status=500)

    broken = web.Application()
    broken.router.add_get("/api/v1/users", failing)
    server = await aiohttp_client(broken)
    base = str(server.server.make_url("")).rstrip("/")
    client = await aiohttp_client(create_app(posts_settings(users_url=base)))
    resp = await client.post("/api/v1/posts", json={"text": "@bob"}, headers=as_user("ana"))
    assert resp.status == 502


TEXT_OK = "hello"
BAD_BODIES = [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": " \n\t "}, "text"),
    ({"text": "x" * 2001}, "text"),
    ({"text": "a\x00b"}, "text"),
    ({"text": "a\x1bb"}, "text"),
    ({"text": 5}, "text"),
    ({"text": None}, "text"),
    ({"text": ["a"]}, "text"),
    ({"text": TEXT_OK, "media": {}}, "media"),
    ({"text": TEXT_OK, "media": [{"id": 1, "type": "image"}] * 11}, "media"),
    ({"text": TEXT_OK, "media": [{"id": 1}]}, "media.0.type"),
    ({"text": TEXT_OK, "media": [{"type": "image"}]}, "media.0.id"),
    ({"text": TEXT_OK, "media": [{"id": -1, "type": "image"}]}, "media.0.id"),
    ({"text": TEXT_OK, "media": [{"id": "1", "type": "image"}]}, "media.0.id"),
    ({"text": TEXT_OK, "media": [{"id": 2**63, "type": "image"}]}, "media.0.id"),
    ({"text": TEXT_OK, "media": [{"id": 1, "type": "Image"}]}, "media.0.type"),
    ({"text": TEXT_OK, "media": [{"id": 1, "type": ""}]}, "media.0.type"),
    ({"text": TEXT_OK, "media": [{"id": 1, "type": "x" * 51}]}, "media.0.type"),
    ({"text": TEXT_OK, "media": [{"id": 1, "type": "image", "url": "x"}]}, "media.0.url"),
    ({"text": TEXT_OK, "reply_to": 0}, "reply_to"),
    ({"text": TEXT_OK, "reply_to": "1"}, "reply_to"),
    ({"text": TEXT_OK, "reply_to": 1.5}, "reply_to"),
    ({"text": TEXT_OK, "reply_to": 2**63}, "reply_to"),
    ({"text": TEXT_OK, "author_id": 1}, "author_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_every_bad_field_is_a_400_naming_it_and_stores_nothing(
    client, as_user, posts_dsn, body, field
):
    resp = await client.post("/api/v1/posts", json=body, headers=as_user("ana"))
    assert resp.status == 400, await resp.text()
    error = await resp.json()
    assert error["code"] == "validation_error"
    assert field in [detail["field"] for detail in error["details"]]
    assert await count_rows(posts_dsn, "posts") == 0 and await count_rows(posts_dsn, "outbox") == 0


async def test_malformed_or_foreign_bodies_are_refused(client, as_user):
    headers = as_user("ana")
    resp = await client.post(
        "/api/v1/posts", data=b"{", headers=headers | {"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["code"] == "malformed_json"
    resp = await client.post(
        "/api/v1/posts", data=b"text=x", headers=headers | {"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    resp = await client.post(
        "/api/v1/posts", data=b"[]", headers=headers | {"Content-Type": "application/json"}
    )
    assert resp.status == 400


async def test_the_limits_of_a_text_are_counted_after_trimming(client, as_user):
    post = await compose(client, as_user("ana"), text="  " + "x" * 2000 + "\n\n")
    assert post["text"] == "x" * 2000
    assert (await compose(client, as_user("ana"), text="é"))["text"] == "é"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ids": ""}, "ids"),
        ({"ids": "0"}, "ids"),
        ({"ids": "a,b"}, "ids"),
        ({"ids": "1,,2"}, "ids"),
        ({"ids": ",".join(str(n) for n in range(1, 102))}, "ids"),
        ({"ids": "99999999999999999999"}, "ids"),  # 20 digits: past the pattern
        ({"author_ids": ",".join(str(n) for n in range(1, 1002))}, "author_ids"),
        ({"author_ids": "-1"}, "author_ids"),
        ({"author_ids": "1", "limit": "0"}, "limit"),
        ({"author_ids": "1", "limit": "801"}, "limit"),
        ({"author_ids": "1", "limit": "x"}, "limit"),
        ({"author_ids": "1", "before": "0"}, "before"),
        ({"author_ids": "1", "before": "x"}, "before"),
    ],
)
async def test_bad_queries_are_400s_naming_the_parameter(client, params, field):
    resp = await client.get("/api/v1/posts", params=params)
    assert resp.status == 400, await resp.text()
    error = await resp.json()
    assert (
        field in [d["field"] for d in error["details"]]
        and error["details"][0]["location"] == "query"
    )


@pytest.mark.parametrize("params", [{}, {"ids": "1", "author_ids": "1"}])
async def test_neither_or_both_of_ids_and_author_ids_is_a_422(client, params):
    resp = await client.get("/api/v1/posts", params=params)
    assert resp.status == 422
    assert (await resp.json())["details"][0]["field"] == "ids"


async def test_the_largest_batches_are_accepted(client):
    ids = ",".join(str(n) for n in range(1, 101))
    assert (await client.get("/api/v1/posts", params={"ids": ids})).status == 200
    authors = ",".join(str(n) for n in range(1, 1001))
    resp = await client.get("/api/v1/posts", params={"author_ids": authors, "limit": "800"})
    assert resp.status == 200 and (await resp.json()) == {"items": [], "next": None}


@pytest.mark.parametrize("path", ["/api/v1/posts/0", "/api/v1/posts/abc", "/api/v1/posts/-1"])
async def test_a_bad_post_id_is_a_400(client, as_user, path):
    assert (await client.get(path)).status == 400
    assert (await client.delete(path, headers=as_user("ana"))).status == 400


async def test_writing_needs_a_valid_token(client, auth_keys, accounts, posts_dsn):
    post_path = "/api/v1/posts"
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic YTpi"},
        {"Authorization": f"Bearer {auth_keys.token(1, 'ana', now=0)}"},  # expired in 1970
    ):
        resp = await client.post(post_path, json={"text": "x"}, headers=headers)
        assert resp.status == 401 and "WWW-Authenticate" in resp.headers
        resp = await client.delete(f"{post_path}/1", headers=headers)
        assert resp.status == 401
    assert await count_rows(posts_dsn, "posts") == 0


async def test_the_document_states_every_route(client):
    document = await (await client.get("/api/v1/posts/openapi.json")).json()
    assert set(document["paths"]) == {"/api/v1/posts", "/api/v1/posts/{id}", "/s/{code}"}
    assert document["paths"]["/api/v1/posts"]["post"]["security"] == [{"bearerAuth": []}]
    redirect = document["paths"]["/s/{code}"]["get"]["responses"]["302"]
    assert "Location" in redirect["headers"]

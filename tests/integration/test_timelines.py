"""Timelines through the ingress: fan-out to followers within a bounded time (polled),
backfill on follow, removal on unfollow and delete, your own posts at once, user
timelines, pages that neither overlap nor skip while posts arrive, and every error.
(Big accounts merged at read, a Redis emptied and a replica killed mid fan-out are in
tests/fault/test_timelines_faults.py: they need thousands of followers.)"""

from __future__ import annotations

import pytest

from tests.integration.social_helpers import new_account, refused_tokens
from tests.integration.timelines_helpers import (
    compose,
    follow,
    home,
    home_ids,
    unfollow,
    wait_home,
)


@pytest.fixture
def pair(agora, unique):
    """A reader and an author the reader follows."""
    reader, author = new_account(agora, f"r_{unique}"), new_account(agora, f"a_{unique}")
    follow(agora, reader, author.id)
    return reader, author


def test_a_followees_post_reaches_the_home_timeline(agora, pair):
    reader, author = pair
    post = compose(agora, author, "hello #followers")
    wait_home(agora, reader, lambda ids: post["id"] in ids, "post in the follower's home")
    item = next(p for p in home(agora, reader)["items"] if p["id"] == post["id"])
    # hydrated: the post as posts has it, with engagement's counts for this reader
    assert item == {**post, "like_count": 0, "comment_count": 0, "liked_by_me": False}


def test_your_own_post_is_in_your_home_timeline_at_once(agora, pair):
    reader, _ = pair
    mine = compose(agora, reader, "my own")
    assert home_ids(agora, reader)[0] == mine["id"]  # no waiting: merged at read


def test_follow_backfills_and_unfollow_removes(agora, unique):
    reader, author = new_account(agora, f"r_{unique}"), new_account(agora, f"a_{unique}")
    earlier = [compose(agora, author, f"before the follow {i}")["id"] for i in range(3)]
    follow(agora, reader, author.id)
    wait_home(agora, reader, lambda ids: set(earlier) <= set(ids), "backfilled posts")
    assert home_ids(agora, reader)[:3] == earlier[::-1]  # newest first

    unfollow(agora, reader, author.id)
    wait_home(agora, reader, lambda ids: not set(earlier) & set(ids), "posts removed")


def test_a_deleted_post_leaves_the_home_timeline(agora, pair):
    reader, author = pair
    kept, deleted = (compose(agora, author, text)["id"] for text in ("kept", "deleted"))
    wait_home(agora, reader, lambda ids: {kept, deleted} <= set(ids), "both posts")
    resp = agora.delete(f"/api/v1/posts/{deleted}", headers=author.auth)
    assert resp.status_code == 204
    ids = wait_home(agora, reader, lambda ids: deleted not in ids, "deleted post gone")
    assert kept in ids


def test_the_user_timeline_is_a_users_posts_newest_first(agora, pair):
    reader, author = pair
    posted = [compose(agora, author, f"post {i}")["id"] for i in range(5)]
    compose(agora, reader, "not the author's")
    first = agora.get(f"/api/v1/timelines/users/{author.id}", params={"limit": 3}).json()
    assert [p["id"] for p in first["items"]] == posted[:1:-1] and first["next"] == str(posted[2])
    rest = agora.get(
        f"/api/v1/timelines/users/{author.id}", params={"limit": 3, "before": first["next"]}
    ).json()
    assert [p["id"] for p in rest["items"]] == posted[1::-1] and rest["next"] is None
    assert all(p["author"]["id"] == author.id for p in first["items"] + rest["items"])
    nobody = agora.get("/api/v1/timelines/users/999999999").json()
    assert nobody == {"items": [], "next": None}


def test_pages_neither_overlap_nor_skip_while_posts_arrive(agora, pair):
    reader, author = pair
    posted = [compose(agora, author, f"older {i}")["id"] for i in range(10)]
    wait_home(agora, reader, lambda ids: set(posted) <= set(ids), "the ten posts")
    seen: list[int] = []
    page = home(agora, reader, limit=3)
    while True:
        seen += [p["id"] for p in page["items"]]
        compose(agora, author, "arrives while paging")  # newer than every page
        if page["next"] is None:
            break
        page = home(agora, reader, limit=3, before=page["next"])
    assert seen == posted[::-1]


def test_the_home_timeline_needs_a_valid_token(agora, pair):
    reader, _ = pair
    for headers, code in refused_tokens(reader):
        resp = agora.get("/api/v1/timelines/home", headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="agora"')
        assert resp.json()["code"] == code, headers


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/timelines/users/1", {"limit": "0"}, "limit"),
        ("/api/v1/timelines/users/1", {"limit": "101"}, "limit"),
        ("/api/v1/timelines/users/1", {"before": "abc"}, "before"),
        ("/api/v1/timelines/users/1", {"before": "0"}, "before"),
        ("/api/v1/timelines/users/1", {"before": str(2**53)}, "before"),
        ("/api/v1/timelines/users/abc", {}, "user_id"),
        ("/api/v1/timelines/users/0", {}, "user_id"),
    ],
)
def test_bad_queries_are_400s_naming_the_field(agora, path, params, field):
    resp = agora.get(path, params=params)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == "validation_error"
    assert [detail["field"] for detail in body["details"]] == [field]


def test_a_bad_query_of_the_home_timeline_is_a_400(agora, pair):
    reader, _ = pair
    resp = agora.get("/api/v1/timelines/home", params={"limit": "x"}, headers=reader.auth)
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "limit"

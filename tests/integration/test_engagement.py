"""engagement through the ingress: likes, comments, counts, deletion rules, bad input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .social_users import eventually, join, join_many, post


@pytest.fixture
def ana(agora, unique):
    return join(agora, f"ana_{unique}")


@pytest.fixture
def bob(agora, unique):
    return join(agora, f"bob_{unique}")


def likes(agora, post_id, member=None):
    resp = agora.get(f"/api/v1/likes/{post_id}", headers=member.auth if member else {})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_like_and_unlike_are_idempotent(agora, ana, bob):
    hello = post(agora, ana, "hello")
    for _ in range(2):
        assert agora.put(f"/api/v1/likes/{hello['id']}", headers=bob.auth).status_code == 204
    assert likes(agora, hello["id"], bob) == {"count": 1, "liked_by_me": True}
    assert likes(agora, hello["id"], ana) == {"count": 1, "liked_by_me": False}
    assert likes(agora, hello["id"]) == {"count": 1, "liked_by_me": None}
    users = agora.get(f"/api/v1/likes/{hello['id']}/users").json()
    assert [(u["id"], u["username"]) for u in users["items"]] == [(bob.id, bob.username)]
    for _ in range(2):
        assert agora.delete(f"/api/v1/likes/{hello['id']}", headers=bob.auth).status_code == 204
    assert likes(agora, hello["id"], bob) == {"count": 0, "liked_by_me": False}


def test_200_users_at_once_count_200_and_one_user_50_times_counts_1(agora, unique):
    members = join_many(agora, f"c{unique[:8]}_", 200)
    target = post(agora, members[0], "popular")
    with ThreadPoolExecutor(50) as pool:
        statuses = list(
            pool.map(
                lambda m: agora.put(f"/api/v1/likes/{target['id']}", headers=m.auth).status_code,
                members,
            )
        )
        assert statuses == [204] * 200
        assert likes(agora, target["id"])["count"] == 200
        other = post(agora, members[1], "liked once")
        statuses = list(
            pool.map(
                lambda _: (
                    agora.put(f"/api/v1/likes/{other['id']}", headers=members[2].auth).status_code
                ),
                range(50),
            )
        )
        assert set(statuses) == {204}
        assert likes(agora, other["id"])["count"] == 1


def test_a_comment_thread_pages_oldest_first(agora, ana, bob):
    thread = post(agora, ana, "discuss")
    made = []
    for i in range(5):
        resp = agora.post(
            "/api/v1/comments",
            json={"post_id": thread["id"], "text": f"reply {i} @{ana.username}"},
            headers=bob.auth,
        )
        assert resp.status_code == 201, resp.text
        assert resp.headers["Location"] == f"/api/v1/comments/{resp.json()['id']}"
        made.append(resp.json())
    assert made[0]["mentions"] == [{"id": ana.id, "username": ana.username}]
    seen, cursor = [], None
    while True:
        params = {"post_id": thread["id"], "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = agora.get("/api/v1/comments", params=params).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [c["id"] for c in made]
    counts = agora.get("/api/v1/engagement/counts", params={"post_ids": thread["id"]}).json()
    assert counts["items"][0]["comment_count"] == 5


def test_who_may_delete_a_comment(agora, ana, bob, unique):
    eve = join(agora, f"eve_{unique}")
    thread = post(agora, ana, "mine")
    ids = [
        agora.post(
            "/api/v1/comments", json={"post_id": thread["id"], "text": t}, headers=bob.auth
        ).json()["id"]
        for t in ("one", "two")
    ]
    assert agora.delete(f"/api/v1/comments/{ids[0]}", headers=eve.auth).status_code == 403
    assert agora.delete(f"/api/v1/comments/{ids[0]}").status_code == 401
    assert agora.delete(f"/api/v1/comments/{ids[0]}", headers=bob.auth).status_code == 204
    assert agora.delete(f"/api/v1/comments/{ids[1]}", headers=ana.auth).status_code == 204
    assert agora.get(f"/api/v1/comments/{ids[1]}").status_code == 404


def test_a_deleted_post_takes_its_likes_and_comments(agora, ana, bob):
    doomed = post(agora, ana, "doomed")
    agora.put(f"/api/v1/likes/{doomed['id']}", headers=bob.auth)
    made = agora.post(
        "/api/v1/comments", json={"post_id": doomed["id"], "text": "bye"}, headers=bob.auth
    ).json()
    assert agora.delete(f"/api/v1/posts/{doomed['id']}", headers=ana.auth).status_code == 204
    eventually(lambda: agora.get(f"/api/v1/comments/{made['id']}").status_code == 404)
    assert agora.put(f"/api/v1/likes/{doomed['id']}", headers=bob.auth).status_code == 404
    assert agora.get(f"/api/v1/likes/{doomed['id']}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/api/v1/likes/abc", None, "post_id"),
        ("PUT", "/api/v1/likes/0", None, "post_id"),
        ("GET", "/api/v1/likes/1/users?limit=0", None, "limit"),
        ("GET", "/api/v1/likes/1/users?cursor=-1", None, "cursor"),
        ("POST", "/api/v1/comments", {"text": "x"}, "post_id"),
        ("POST", "/api/v1/comments", {"post_id": "1", "text": "x"}, "post_id"),
        ("POST", "/api/v1/comments", {"post_id": 1}, "text"),
        ("POST", "/api/v1/comments", {"post_id": 1, "text": ""}, "text"),
        ("POST", "/api/v1/comments", {"post_id": 1, "text": "x" * 1001}, "text"),
        ("POST", "/api/v1/comments", {"post_id": 1, "text": "a\x00b"}, "text"),
        ("POST", "/api/v1/comments", {"post_id": 1, "text": "x", "more": 1}, "more"),
        ("GET", "/api/v1/comments", None, "post_id"),
        ("GET", "/api/v1/comments?post_id=1&limit=101", None, "limit"),
        ("GET", "/api/v1/comments/x", None, "id"),
        ("GET", "/api/v1/engagement/counts", None, "post_ids"),
        ("GET", "/api/v1/engagement/counts?post_ids=1,x", None, "post_ids"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(agora, ana, method, path, body, field):
    resp = agora.request(method, path, json=body, headers=ana.auth)
    assert resp.status_code == 400, resp.text
    assert field in {d["field"] for d in resp.json()["details"]}


def test_unknown_posts_are_404(agora, ana):
    missing = 2**52
    assert agora.put(f"/api/v1/likes/{missing}", headers=ana.auth).status_code == 404
    resp = agora.post("/api/v1/comments", json={"post_id": missing, "text": "x"}, headers=ana.auth)
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found"


def test_timelines_and_posts_show_counts(agora, ana, bob):
    shown = post(agora, ana, "count on me")
    assert agora.put(f"/api/v1/likes/{shown['id']}", headers=bob.auth).status_code == 204
    agora.post("/api/v1/comments", json={"post_id": shown["id"], "text": "ok"}, headers=bob.auth)

    def counted(path, member):
        resp = agora.get(path, headers=member.auth)
        assert resp.status_code == 200, resp.text
        assert "Agora-Degraded" not in resp.headers
        items = resp.json()["items"] if "items" in resp.json() else [resp.json()]
        mine = [p for p in items if p["id"] == shown["id"]]
        counts = (mine[0]["like_count"], mine[0]["comment_count"], mine[0]["liked_by_me"])
        return counts if counts[:2] == (1, 1) else None

    assert eventually(lambda: counted(f"/api/v1/timelines/users/{ana.id}", bob)) == (1, 1, True)
    assert eventually(lambda: counted("/api/v1/timelines/home", ana)) == (1, 1, False)
    assert eventually(lambda: counted(f"/api/v1/posts/{shown['id']}", bob)) == (1, 1, True)
    resp = agora.get(f"/api/v1/timelines/users/{ana.id}", params={"counts": "false"})
    assert "like_count" not in resp.json()["items"][0]

"""posts through the ingress: compose with mentions, hashtags and URLs, the short links'
redirects, reads, delete, bad input and every auth error."""

from __future__ import annotations

import pytest

from .social_helpers import new_account, refused_tokens


@pytest.fixture
def ana(agora, unique):
    return new_account(agora, f"ana_{unique}")


@pytest.fixture
def bob(agora, unique):
    return new_account(agora, f"bob.{unique}")


def compose(agora, account, **body) -> dict:
    resp = agora.post("/api/v1/posts", json=body, headers=account.auth)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"/api/v1/posts/{resp.json()['id']}"
    return resp.json()


def test_compose_with_mentions_hashtags_and_urls(agora, ana, bob):
    post = compose(
        agora,
        ana,
        text=f"hey @{bob.username.upper()}, @nobody_{ana.id}: #Agora #agora https://example.com/a.",
        media=[{"id": 3, "type": "image"}],
    )
    (link,) = post["urls"]
    assert link["original"] == "https://example.com/a"
    assert post["text"].endswith(f"#Agora #agora {link['short']}.")
    assert post["author"] == {"id": ana.id, "username": ana.username}
    assert post["mentions"] == [{"id": bob.id, "username": bob.username}]
    assert post["hashtags"] == ["agora"]
    assert post["media"] == [{"id": 3, "type": "image"}] and post["reply_to"] is None
    read = agora.get(f"/api/v1/posts/{post['id']}").json()  # with engagement's counts
    assert read == {**post, "like_count": 0, "comment_count": 0, "liked_by_me": None}
    assert post["id"] < 2**53


def test_the_short_link_redirects_and_unknown_codes_are_404(agora, ana):
    post = compose(agora, ana, text="read http://example.org/page?x=1 and https://example.net")
    for link in post["urls"]:
        resp = agora.get(link["short"], follow_redirects=False)
        assert resp.status_code == 302 and resp.headers["Location"] == link["original"]
    resp = agora.get("/s/AAAAAAAAAAA", follow_redirects=False)
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    assert agora.get("/s/x", follow_redirects=False).status_code == 400


def test_replies_batches_and_authors_pages(agora, ana, bob):
    first = compose(agora, ana, text="first")
    reply = compose(agora, bob, text="re", reply_to=first["id"])
    assert reply["reply_to"] == first["id"]
    more = [compose(agora, ana, text=f"ana {n}") for n in range(3)]
    batch = agora.get("/api/v1/posts", params={"ids": f"{reply['id']},1,{first['id']}"}).json()
    assert [p["id"] for p in batch["items"]] == [reply["id"], first["id"]]
    assert batch["next"] is None
    wanted = sorted([first["id"], reply["id"], *(p["id"] for p in more)], reverse=True)
    seen, before = [], None
    while True:
        params = {"author_ids": f"{ana.id},{bob.id}", "limit": 2} | (
            {"before": before} if before else {}
        )
        page = agora.get("/api/v1/posts", params=params).json()
        seen += [p["id"] for p in page["items"]]
        if not (before := page["next"]):
            break
    assert seen == wanted


def test_only_the_author_deletes_and_the_post_and_its_links_are_gone(agora, ana, bob):
    post = compose(agora, ana, text="soon gone https://example.com/gone")
    resp = agora.delete(f"/api/v1/posts/{post['id']}", headers=bob.auth)
    assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
    assert agora.delete(f"/api/v1/posts/{post['id']}", headers=ana.auth).status_code == 204
    assert agora.get(f"/api/v1/posts/{post['id']}").status_code == 404
    assert agora.get(post["urls"][0]["short"], follow_redirects=False).status_code == 404
    assert agora.get("/api/v1/posts", params={"ids": str(post["id"])}).json()["items"] == []
    assert agora.delete(f"/api/v1/posts/{post['id']}", headers=ana.auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"text": "   "}, 400, "text"),
        ({"text": "x" * 2001}, 400, "text"),
        ({"text": "a\u0000"}, 400, "text"),
        ({"text": "ok", "media": [{"id": 1, "type": "image"}] * 11}, 400, "media"),
        ({"text": "ok", "media": [{"id": "a", "type": "image"}]}, 400, "media.0.id"),
        ({"text": "ok", "media": [{"id": 1, "type": "BIG"}]}, 400, "media.0.type"),
        ({"text": "ok", "reply_to": 0}, 400, "reply_to"),
        ({"text": "ok", "reply_to": 1}, 422, "reply_to"),  # post 1 never exists: ids are big
        ({"text": "ok", "extra": True}, 400, "extra"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(agora, ana, body, status, field):
    resp = agora.post("/api/v1/posts", json=body, headers=ana.auth)
    assert resp.status_code == status, resp.text
    assert field in [d["field"] for d in resp.json()["details"]]
    mine = agora.get("/api/v1/posts", params={"author_ids": str(ana.id)}).json()
    assert mine["items"] == []


def test_bad_queries_are_refused(agora):
    for params in ({"ids": "x"}, {"author_ids": "1", "limit": 801}, {"author_ids": "0"}):
        resp = agora.get("/api/v1/posts", params=params)
        assert resp.status_code == 400 and resp.json()["code"] == "validation_error"
    for params in ({}, {"ids": "1", "author_ids": "1"}):  # one of them: a rule between them
        assert agora.get("/api/v1/posts", params=params).status_code == 422


def test_every_auth_error_is_a_401_and_a_stranger_gets_403(agora, ana, bob):
    post = compose(agora, ana, text="mine")
    for headers, code in refused_tokens(ana):
        resp = agora.post("/api/v1/posts", json={"text": "x"}, headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] == code, resp.text
        assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="agora"')
        resp = agora.delete(f"/api/v1/posts/{post['id']}", headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] == code
    assert agora.delete(f"/api/v1/posts/{post['id']}", headers=bob.auth).status_code == 403
    assert agora.get(f"/api/v1/posts/{post['id']}").status_code == 200
    mine = agora.get("/api/v1/posts", params={"author_ids": str(ana.id)}).json()
    assert [p["id"] for p in mine["items"]] == [post["id"]]

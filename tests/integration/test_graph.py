"""graph through the ingress: follow and unfollow (idempotent), counts, followers and
followees pages, the big accounts filter, bad input and every auth error."""

from __future__ import annotations

import pytest

from .social_helpers import new_account, refused_tokens


@pytest.fixture
def people(agora, unique):
    return [new_account(agora, f"g{n}_{unique}") for n in range(5)]


def counts(agora, account) -> dict:
    resp = agora.get(f"/api/v1/graph/{account.id}")
    assert resp.status_code == 200
    return resp.json()


def test_follow_and_unfollow_are_idempotent(agora, people):
    ana, bob = people[:2]
    for _ in range(2):
        resp = agora.put(f"/api/v1/graph/following/{bob.id}", headers=ana.auth)
        assert resp.status_code == 204 and resp.content == b""
    assert counts(agora, bob) == {"user_id": bob.id, "followers": 1, "following": 0}
    assert counts(agora, ana) == {"user_id": ana.id, "followers": 0, "following": 1}
    for _ in range(2):
        assert (
            agora.delete(f"/api/v1/graph/following/{bob.id}", headers=ana.auth).status_code == 204
        )
    assert counts(agora, bob)["followers"] == 0 and counts(agora, ana)["following"] == 0


def test_followers_and_following_pages(agora, people):
    star, *fans = people
    for fan in fans:
        assert agora.put(f"/api/v1/graph/following/{star.id}", headers=fan.auth).status_code == 204
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = agora.get(f"/api/v1/graph/{star.id}/followers", params=params).json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next"]):
            break
    assert seen == [fan.id for fan in reversed(fans)]
    me = fans[0]
    for other in fans[1:3]:
        agora.put(f"/api/v1/graph/following/{other.id}", headers=me.auth)
    following = agora.get(f"/api/v1/graph/{me.id}/following").json()
    assert [item["id"] for item in following["items"]] == [fans[2].id, fans[1].id, star.id]
    big = agora.get(f"/api/v1/graph/{me.id}/following", params={"min_followers": 2}).json()
    assert [item["id"] for item in big["items"]] == [star.id]
    ids = agora.get(f"/api/v1/graph/{me.id}/following/ids").json()
    assert ids == {"ids": [fans[2].id, fans[1].id, star.id]}


def test_yourself_is_400_and_an_unknown_user_404(agora, people):
    ana = people[0]
    resp = agora.put(f"/api/v1/graph/following/{ana.id}", headers=ana.auth)
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "user_id"
    resp = agora.put("/api/v1/graph/following/999999999", headers=ana.auth)
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    assert counts(agora, ana)["following"] == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/graph/0", {}),
        ("/api/v1/graph/x/followers", {}),
        ("/api/v1/graph/1/followers", {"limit": 1001}),
        ("/api/v1/graph/1/followers", {"cursor": "abc"}),
        ("/api/v1/graph/1/following", {"min_followers": -1}),
        ("/api/v1/graph/1/following/ids", {"limit": 5001}),
    ],
)
def test_bad_parameters_are_400(agora, path, params):
    resp = agora.get(path, params=params)
    assert resp.status_code == 400 and resp.json()["code"] == "validation_error"


def test_every_auth_error_is_a_401_and_changes_nothing(agora, people):
    ana, bob = people[:2]
    for headers, code in refused_tokens(ana):
        for method in ("PUT", "DELETE"):
            resp = agora.request(method, f"/api/v1/graph/following/{bob.id}", headers=headers)
            assert resp.status_code == 401 and resp.json()["code"] == code, resp.text
            assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="agora"')
    assert counts(agora, bob)["followers"] == 0

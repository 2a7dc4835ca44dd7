"""search through the ingress: a post is found within a bounded time after it is written
and never after it is deleted; hashtags, mentions, phrases, users; bounded queries."""

from __future__ import annotations

import pytest

from .social_users import eventually, join, post

PATIENCE = 10.0  # seconds from a post's commit to its being found (the index lag bound)


def texts(agora, q, **params):
    resp = agora.get("/api/v1/search/posts", params={"q": q, **params})
    assert resp.status_code == 200, resp.text
    return [p["text"] for p in resp.json()["items"]]


def found(agora, q, text):
    return eventually(lambda: text in texts(agora, q), PATIENCE)


def test_a_post_is_found_soon_and_never_after_its_deletion(agora, unique):
    ana = join(agora, f"s_{unique}")
    word = f"zq{unique[:10]}"
    made = post(agora, ana, f"Searching for {word} words")
    found(agora, word, made["text"])
    assert agora.delete(f"/api/v1/posts/{made['id']}", headers=ana.auth).status_code == 204
    eventually(lambda: texts(agora, word) == [], PATIENCE)


def test_hashtags_mentions_and_phrases(agora, unique):
    ana = join(agora, f"h_{unique}")
    bob = join(agora, f"m_{unique}")
    tag = f"t{unique[:10]}"
    tagged = post(agora, ana, f"cafés and #{tag} for @{bob.username}")
    plain = post(agora, ana, f"{tag} without its hash")
    found(agora, f"#{tag}", tagged["text"])
    found(agora, tag, plain["text"])
    assert texts(agora, f"#{tag.upper()}") == [tagged["text"]]
    assert texts(agora, f"@{bob.username} cafe") == [tagged["text"]]
    assert texts(agora, f'"{tag} without"') == [plain["text"]]


def test_users_by_prefix_and_typo(agora, unique):
    stem = f"q{unique[:8]}"
    member = join(agora, f"{stem}rianne", name="Marianne Search")

    def usernames(q):
        resp = agora.get("/api/v1/search/users", params={"q": q})
        assert resp.status_code == 200, resp.text
        return [u["username"] for u in resp.json()["items"]]

    eventually(lambda: member.username in usernames(stem), PATIENCE)
    assert member.username in usernames(f"{stem}riane")  # a letter missing


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"q": ""}, 400),
        ({"q": "x" * 201}, 400),
        ({"q": "a b c d e f g h i"}, 422),
        ({"q": "cat", "limit": 51}, 400),
        ({"q": "cat", "offset": 1001}, 400),
        ({"q": "the"}, 422),
    ],
)
def test_bounded_queries(agora, params, status):
    assert agora.get("/api/v1/search/posts", params=params).status_code == status
    if "q" in params and status == 400:
        assert agora.get("/api/v1/search/users", params={"q": "x" * 51}).status_code == 400

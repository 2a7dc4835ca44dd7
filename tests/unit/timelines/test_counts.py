"""Timelines' posts carry their likes and comments from engagement, in one batch call per
page, and a page is answered without them (degraded, never failed) when engagement fails."""

from __future__ import annotations

import pytest

from services.engagement.app import Settings as EngagementSettings
from services.engagement.app import create_app as create_engagement
from tests.unit.conftest import truncate_all, until
from tests.unit.social_conftest import dead_url, url_of


@pytest.fixture
async def engagement(aiohttp_client, databases, redis_url, auth_keys, social):
    await truncate_all(databases["engagement"])
    settings = EngagementSettings(
        service_name="engagement",
        database_url=databases["engagement"],
        redis_url=redis_url,
        posts_url=url_of(social.posts),
        users_url=url_of(social.users),
        auth_public_key_file=auth_keys.public_file,
    )
    return await aiohttp_client(create_engagement(settings))


async def test_timelines_show_counts_and_liked_by_me(make_social, engagement):
    social = await make_social(engagement_url=url_of(engagement), engagement_counts_ttl=0)
    ana_id, ana = await social.account("ana")
    _, bob = await social.account("bob")
    liked = await social.compose(ana, "like me")
    plain = await social.compose(ana, "or not")
    assert (await engagement.put(f"/api/v1/likes/{liked}", headers=bob)).status == 204
    resp = await engagement.post(
        "/api/v1/comments", json={"post_id": liked, "text": "hi"}, headers=ana
    )
    assert resp.status == 201

    async def page(headers):
        resp = await social.timelines.get(f"/api/v1/timelines/users/{ana_id}", headers=headers)
        assert resp.status == 200 and "Agora-Degraded" not in resp.headers
        return {
            p["id"]: (p["like_count"], p["comment_count"], p["liked_by_me"])
            for p in (await resp.json())["items"]
        }

    assert await page(bob) == {liked: (1, 1, True), plain: (0, 0, False)}
    assert await page({}) == {liked: (1, 1, None), plain: (0, 0, None)}
    home = await until(lambda: social.home(ana))
    assert {p["id"]: p["like_count"] for p in home["items"]} == {liked: 1, plain: 0}
    resp = await social.timelines.get(
        f"/api/v1/timelines/users/{ana_id}", params={"counts": "false"}
    )
    assert all("like_count" not in p for p in (await resp.json())["items"])


async def test_a_page_without_engagement_is_degraded_not_failed(make_social):
    social = await make_social(engagement_url=dead_url())
    ana_id, ana = await social.account("ana")
    post_id = await social.compose(ana, "counts unknown")
    resp = await social.timelines.get(f"/api/v1/timelines/users/{ana_id}", headers=ana)
    assert resp.status == 200
    assert resp.headers["Agora-Degraded"] == "counts"
    [post] = (await resp.json())["items"]
    assert post["id"] == post_id
    assert (post["like_count"], post["comment_count"], post["liked_by_me"]) == (None, None, None)

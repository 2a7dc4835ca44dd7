"""GET /api/v1/posts/{id} carries the post's likes and comments, degraded when engagement
fails."""

from __future__ import annotations

from services.engagement.app import create_app
from tests.unit.conftest import truncate_all
from tests.unit.social import social
from tests.unit.social_conftest import dead_url


async def test_a_post_carries_its_counts(aiohttp_client, databases, redis_url, auth_keys):
    await truncate_all(databases["engagement"])
    from services.engagement.app import Settings

    base = await social(aiohttp_client, databases, redis_url, auth_keys)
    engagement = await aiohttp_client(
        create_app(
            Settings(
                service_name="engagement",
                database_url=databases["engagement"],
                redis_url=redis_url,
                posts_url=base.posts_url,
                users_url=base.users_url,
                auth_public_key_file=auth_keys.public_file,
            )
        )
    )
    url = str(engagement.server.make_url("")).rstrip("/")
    network = await social(
        aiohttp_client,
        databases,
        redis_url,
        auth_keys,
        engagement_url=url,
        engagement_counts_ttl=0,
    )
    ana = await network.account("ana")
    post = await network.post(ana, "count me")
    assert (
        await engagement.put(f"/api/v1/likes/{post['id']}", headers=ana["headers"])
    ).status == 204
    resp = await network.posts.get(f"/api/v1/posts/{post['id']}", headers=ana["headers"])
    assert resp.status == 200 and "Agora-Degraded" not in resp.headers
    body = await resp.json()
    assert (body["like_count"], body["comment_count"], body["liked_by_me"]) == (1, 0, True)
    resp = await network.posts.get(f"/api/v1/posts/{post['id']}")
    assert (await resp.json())["liked_by_me"] is None


async def test_a_post_without_engagement_is_degraded(
    aiohttp_client, databases, redis_url, auth_keys
):
    network = await social(
        aiohttp_client, databases, redis_url, auth_keys, engagement_url=dead_url()
    )
    ana = await network.account("ana")
    post = await network.post(ana, "no counts")
    resp = await network.posts.get(f"/api/v1/posts/{post['id']}")
    assert resp.status == 200 and resp.headers["Agora-Degraded"] == "counts"
    body = await resp.json()
    assert (body["like_count"], body["comment_count"], body["liked_by_me"]) == (None, None, None)
    assert body["text"] == "no counts"

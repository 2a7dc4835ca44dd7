"""The social services in-process, for timelines: real users, posts and graph apps (on
their own databases) and timelines, sharing one real Redis for the event streams."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient

from services.graph.app import Settings as GraphSettings
from services.graph.app import create_app as create_graph
from services.posts.app import Settings as PostsSettings
from services.posts.app import create_app as create_posts
from services.timelines.app import Settings as TimelinesSettings
from services.timelines.app import create_app as create_timelines
from services.users.app import create_app as create_users
from tests.unit.conftest import AuthKeys, truncate_all
from tests.unit.social_conftest import url_of
from tests.unit.users.conftest import users_settings


@dataclass
class Social:
    users: TestClient
    posts: TestClient
    graph: TestClient
    timelines: TestClient
    keys: AuthKeys

    async def account(self, username: str) -> tuple[int, dict[str, str]]:
        """A new account: its id and the Authorization header of its token."""
        resp = await self.users.post(
            "/api/v1/users", json={"name": username, "username": username, "password": "pass word"}
        )
        assert resp.status == 201, await resp.text()
        user_id = (await resp.json())["id"]
        return user_id, self.keys.header(user_id, username)

    async def compose(self, author: dict[str, str], text: str) -> int:
        resp = await self.posts.post("/api/v1/posts", json={"text": text}, headers=author)
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]

    async def follow(self, follower: dict[str, str], followee: int) -> None:
        resp = await self.graph.put(f"/api/v1/graph/following/{followee}", headers=follower)
        assert resp.status == 204, await resp.text()

    async def unfollow(self, follower: dict[str, str], followee: int) -> None:
        resp = await self.graph.delete(f"/api/v1/graph/following/{followee}", headers=follower)
        assert resp.status == 204, await resp.text()

    async def home(self, reader: dict[str, str], **params: object) -> dict:
        resp = await self.timelines.get("/api/v1/timelines/home", params=params, headers=reader)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def home_ids(self, reader: dict[str, str], limit: int = 100) -> list[int]:
        return [post["id"] for post in (await self.home(reader, limit=limit))["items"]]


@pytest.fixture
def make_social(aiohttp_client, databases, redis_url, auth_keys):
    async def make(**timelines_overrides: object) -> Social:
        for service in ("users", "posts", "graph"):
            await truncate_all(databases[service])
        users = await aiohttp_client(
            create_users(users_settings(databases["users"], redis_url, auth_keys))
        )
        common = {
            "redis_url": redis_url,
            "users_url": url_of(users),
            "auth_public_key_file": auth_keys.public_file,
            "outbox_poll_interval": 0.1,
        }
        posts = await aiohttp_client(
            create_posts(
                PostsSettings(service_name="posts", database_url=databases["posts"], **common)
            )
        )
        graph = await aiohttp_client(
            create_graph(
                GraphSettings(service_name="graph", database_url=databases["graph"], **common)
            )
        )
        settings = {
            "service_name": "timelines",
            "redis_url": redis_url,
            "posts_url": url_of(posts),
            "graph_url": url_of(graph),
            "auth_public_key_file": auth_keys.public_file,
            "claim_idle_seconds": 0.5,
            **timelines_overrides,
        }
        timelines = await aiohttp_client(create_timelines(TimelinesSettings(**settings)))
        return Social(users, posts, graph, timelines, auth_keys)

    return make


@pytest.fixture
async def social(make_social) -> Social:
    return await make_social()

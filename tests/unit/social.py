"""The social services side by side for unit tests: real users and posts apps (their own
databases, the test Redis) in front of the service under test, as devstack runs them."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp.test_utils import TestClient, TestServer

from services.posts.app import Settings as PostsSettings
from services.posts.app import create_app as posts_app
from services.users.app import create_app as users_app
from tests.unit.conftest import AuthKeys, truncate_all
from tests.unit.users.conftest import users_settings


@dataclass
class Social:
    users: TestClient
    posts: TestClient
    keys: AuthKeys
    users_url: str
    posts_url: str

    async def account(self, username: str, name: str | None = None) -> dict:
        body = {"name": name or username.title(), "username": username, "password": "pw-12345678"}
        resp = await self.users.post("/api/v1/users", json=body)
        assert resp.status == 201, await resp.text()
        user = await resp.json()
        user["headers"] = self.keys.header(user["id"], username)
        return user

    async def post(self, author: dict, text: str) -> dict:
        resp = await self.posts.post(
            "/api/v1/posts", json={"text": text}, headers=author["headers"]
        )
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def delete(self, author: dict, post: dict) -> None:
        resp = await self.posts.delete(f"/api/v1/posts/{post['id']}", headers=author["headers"])
        assert resp.status == 204, await resp.text()


async def social(
    aiohttp_client, databases, redis_url: str, keys: AuthKeys, **posts_overrides: object
) -> Social:
    for service in ("users", "posts"):
        await truncate_all(databases[service])
    users = await aiohttp_client(users_app(users_settings(databases["users"], redis_url, keys)))
    users_url = str(users.server.make_url("")).rstrip("/")
    posts_settings = PostsSettings(
        service_name="posts",
        database_url=databases["posts"],
        redis_url=redis_url,
        users_url=users_url,
        auth_public_key_file=keys.public_file,
        **posts_overrides,
    )
    posts = await aiohttp_client(posts_app(posts_settings))
    assert isinstance(posts.server, TestServer)
    posts_url = str(posts.server.make_url("")).rstrip("/")
    return Social(users, posts, keys, users_url, posts_url)

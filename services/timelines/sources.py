"""What timelines asks posts and graph (docs/social.md): posts by id and by author,
followers, followees."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from services.kit.errors import ApiError
from services.kit.http_client import HttpClient, UpstreamResponse

Post = dict[str, Any]
MAX_IDS = 100  # posts' batch by ids
MAX_AUTHORS = 500  # author ids per call (posts takes 1,000; this keeps the URL short)
MAX_POSTS_PAGE = 800  # posts by author, per call
FOLLOWERS_PAGE = 1000  # graph's largest page
MAX_FOLLOWEES = 5000  # graph's following/ids


def _checked(upstream: str, response: UpstreamResponse) -> Any:
    if not response.ok:
        raise ApiError(502, f"{upstream} answered {response.status}", code="bad_gateway")
    return response.json()


def _ids(ids: Sequence[int]) -> str:
    return ",".join(map(str, ids))


class Sources:
    def __init__(self, client: HttpClient) -> None:
        self.client = client

    async def posts_by_id(self, post_ids: Sequence[int]) -> list[Post]:
        """The posts that exist, in the order asked (deleted and missing ones left out)."""
        found: list[Post] = []
        for start in range(0, len(post_ids), MAX_IDS):
            chunk = post_ids[start : start + MAX_IDS]
            answer = await self.client.get("posts", "/api/v1/posts", params={"ids": _ids(chunk)})
            found.extend(_checked("posts", answer)["items"])
        return found

    async def posts_by_authors(
        self, author_ids: Sequence[int], before: int | None, limit: int
    ) -> list[Post]:
        """The newest `limit` posts of these authors below `before`, newest first."""
        found: list[Post] = []
        for start in range(0, len(author_ids), MAX_AUTHORS):
            params = {"author_ids": _ids(author_ids[start : start + MAX_AUTHORS])}
            params["limit"] = str(min(limit, MAX_POSTS_PAGE))
            if before is not None:
                params["before"] = str(before)
            answer = await self.client.get("posts", "/api/v1/posts", params=params)
            found.extend(_checked("posts", answer)["items"])
        if len(author_ids) > MAX_AUTHORS:
            found.sort(key=lambda post: post["id"], reverse=True)
        return found[:limit]

    async def post_ids_by_author(
        self, author_id: int, down_to: int, most: int
    ) -> AsyncIterator[list[int]]:
        """Pages of an author's post ids, newest first, until one below `down_to` (or
        `most` ids in all)."""
        before: int | None = None
        seen = 0
        while seen < most:
            page = await self.posts_by_authors([author_id], before, MAX_POSTS_PAGE)
            ids = [post["id"] for post in page]
            if not ids:
                return
            yield ids
            seen += len(ids)
            if len(ids) < MAX_POSTS_PAGE or ids[-1] < down_to:
                return
            before = ids[-1]

    async def follower_count(self, user_id: int) -> int:
        answer = await self.client.get("graph", f"/api/v1/graph/{user_id}")
        return int(_checked("graph", answer)["followers"])

    async def follower_pages(self, user_id: int) -> AsyncIterator[list[int]]:
        """Every follower's id, a page of up to 1,000 at a time."""
        cursor: str | None = None
        while True:
            params = {"limit": str(FOLLOWERS_PAGE)}
            if cursor:
                params["cursor"] = cursor
            answer = await self.client.get(
                "graph", f"/api/v1/graph/{user_id}/followers", params=params
            )
            body = _checked("graph", answer)
            ids = [item["id"] for item in body["items"]]
            if ids:
                yield ids
            cursor = body.get("next")
            if not cursor or not ids:
                return

    async def followee_ids(self, user_id: int) -> list[int]:
        answer = await self.client.get(
            "graph", f"/api/v1/graph/{user_id}/following/ids", params={"limit": str(MAX_FOLLOWEES)}
        )
        return [int(i) for i in _checked("graph", answer)["ids"]]

    async def big_followee_ids(self, user_id: int, min_followers: int) -> list[int]:
        answer = await self.client.get(
            "graph",
            f"/api/v1/graph/{user_id}/following",
            params={"min_followers": str(min_followers), "limit": str(FOLLOWERS_PAGE)},
        )
        return [item["id"] for item in _checked("graph", answer)["items"]]

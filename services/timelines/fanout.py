"""Fan-out on write, off the request path: what timelines does with posts' and graph's
events (consumed by the kit's StreamConsumer, at least once, by several consumers at a
time; every handler here is idempotent).

- post.created: the post id goes into each follower's home timeline, 1,000 followers a
  page (one Redis script call per page), unless the author has more than
  FANOUT_MAX_FOLLOWERS followers (then it is merged at read). A redelivered event is
  fanned out again only if the first processing did not finish (a marker per post);
  either way adding a post that is there changes nothing. Its lag from posts' commit
  to the last follower's timeline is the histogram timeline_fanout_lag_seconds.
- post.deleted: the post is tombstoned in the hot-post cache (reads drop it at once)
  and removed from every follower's timeline.
- follow.created: the followee's newest BACKFILL_POSTS posts go into the follower's
  timeline (unless the followee is big); follow.deleted removes the followee's posts from it.
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from pydantic import BaseModel

from services.kit.events import Event

from .sources import Sources
from .store import Timelines

FANOUT_LAG = Histogram(
    "timeline_fanout_lag_seconds",
    "From posts' commit of a post to the post being in every follower's home timeline.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
UNFOLLOW_SCAN_MAX = 8000  # a followee's posts looked at to remove them from one timeline


class PostEvent(BaseModel):
    post_id: int
    author_id: int


class FollowEvent(BaseModel):
    follower_id: int
    followee_id: int


class FanOut:
    def __init__(
        self, timelines: Timelines, sources: Sources, *, max_followers: int, backfill: int
    ) -> None:
        self.timelines = timelines
        self.sources = sources
        self.max_followers = max_followers
        self.backfill = backfill

    async def fanned_out(self, author_id: int) -> bool:
        """Whether the author's posts are fanned out (not above FANOUT_MAX_FOLLOWERS).
        When an author becomes big, their followers' cached lists of big followees are
        cleared once (a page of 1,000 at a time), so their reads merge the author's posts
        from then on rather than after the cache's expiry."""
        small = await self.sources.follower_count(author_id) <= self.max_followers
        if await self.timelines.mark_big(author_id, not small) and not small:
            async for followers in self.sources.follower_pages(author_id):
                await self.timelines.forget_big_followees(*followers)
        return small

    async def on_post_event(self, event: Event) -> bool:
        if event.type == "post.created":
            return await self.post_created(event)
        if event.type == "post.deleted":
            return await self.post_deleted(event)
        return False  # an event timelines has no use for

    async def post_created(self, event: Event) -> bool:
        post = event.payload_as(PostEvent)
        if await self.timelines.was_fanned_out(post.post_id):
            return False
        if await self.fanned_out(post.author_id):
            async for followers in self.sources.follower_pages(post.author_id):
                await self.timelines.fan_out(post.post_id, followers)
            FANOUT_LAG.observe(max(0.0, time.time() - event.occurred_at.timestamp()))
        await self.timelines.mark_fanned_out(post.post_id)
        return True

    async def post_deleted(self, event: Event) -> bool:
        post = event.payload_as(PostEvent)
        await self.timelines.tombstone(post.post_id)
        if await self.fanned_out(post.author_id):
            async for followers in self.sources.follower_pages(post.author_id):
                await self.timelines.remove_everywhere(post.post_id, followers)
        return True

    async def on_graph_event(self, event: Event) -> bool:
        if event.type not in ("follow.created", "follow.deleted"):
            return False
        follow = event.payload_as(FollowEvent)
        follower, followee = follow.follower_id, follow.followee_id
        await self.timelines.forget_big_followees(follower)
        if event.type == "follow.created":
            ids = []
            # A big account's posts are merged at read: backfilling them would only
            # put a copy in the set that nothing keeps up to date.
            if await self.sources.follower_count(followee) <= self.max_followers:
                posts = await self.sources.posts_by_authors([followee], None, self.backfill)
                ids = [post["id"] for post in posts]
            return await self.timelines.follow(event.entry_id, follower, followee, "follow", ids)
        # Unfollow: the followee's posts as far back as this timeline reaches.
        ids = []
        lowest = await self.timelines.lowest(follower)
        if lowest is not None:
            pages = self.sources.post_ids_by_author(followee, lowest, UNFOLLOW_SCAN_MAX)
            async for page in pages:
                ids.extend(post_id for post_id in page if post_id >= lowest)
        return await self.timelines.follow(event.entry_id, follower, followee, "unfollow", ids)

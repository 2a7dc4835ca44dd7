"""Agora's posts in DeathStarBench's shape, and DeathStarBench's compose in Agora's.

DeathStarBench's post (home-timeline/read.lua, _LoadTimeline): every id a string,
`timestamp` milliseconds as a string, `post_type` a number. What has no counterpart:
`req_id` (the id of the request that composed it, which Agora does not keep) is the
post's id; a native account without an external id appears as the negative of its
Agora id (DeathStarBench's ids are 0 or more, so the two can never be confused).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from services.kit.errors import ApiError

# DeathStarBench's PostType enum, in its order.
KINDS = ("post", "repost", "reply", "dm")
KIND_NUMBERS = {kind: number for number, kind in enumerate(KINDS)}
MAX_MEDIA = 10  # posts' limit


def media_of(media_ids: str | None, media_types: str | None) -> list[dict[str, Any]]:
    """media_ids and media_types, JSON arrays of strings (both given, or neither counts,
    as in compose.lua), as posts' media [{"id", "type"}]."""
    if not media_ids or not media_types:
        return []
    try:
        ids, types = orjson.loads(media_ids), orjson.loads(media_types)
    except orjson.JSONDecodeError:
        raise ApiError(400, "media_ids and media_types must be JSON arrays") from None
    if not (isinstance(ids, list) and isinstance(types, list)):
        raise ApiError(400, "media_ids and media_types must be JSON arrays")
    if len(ids) != len(types):  # each well formed (the document), but they do not pair up
        raise ApiError(422, "media_ids and media_types must have one type per id")
    if len(ids) > MAX_MEDIA:
        raise ApiError(400, f"at most {MAX_MEDIA} media")
    media = []
    for media_id, media_type in zip(ids, types, strict=True):
        text = str(media_id)
        if not (text.isascii() and text.isdigit() and int(text) < 2**63):
            raise ApiError(400, "a media id must be an integer from 0 to 2^63-1, in digits")
        media.append({"id": int(text), "type": str(media_type)})
    return media


def external(user_id: int, ids: Mapping[int, int | None]) -> str:
    known = ids.get(user_id)
    return str(known if known is not None else -user_id)


def milliseconds(created_at: str) -> str:
    instant = datetime.fromisoformat(created_at)
    # In integers: a float's product can land a millisecond short.
    return str(int(instant.timestamp()) * 1000 + instant.microsecond // 1000)


def dsb_post(post: Mapping[str, Any], ids: Mapping[int, int | None]) -> dict[str, Any]:
    author = post["author"]
    return {
        "post_id": str(post["id"]),
        "creator": {"user_id": external(author["id"], ids), "username": author["username"]},
        "req_id": str(post["id"]),
        "text": post["text"],
        "user_mentions": [
            {"user_id": external(user["id"], ids), "username": user["username"]}
            for user in post["mentions"]
        ],
        "media": [
            {"media_id": str(item["id"]), "media_type": item["type"]} for item in post["media"]
        ],
        "urls": [
            {"shortened_url": url["short"], "expanded_url": url["original"]} for url in post["urls"]
        ],
        "timestamp": milliseconds(post["created_at"]),
        "post_type": KIND_NUMBERS.get(post.get("kind", "post"), 0),
    }


def users_in(posts: list[Mapping[str, Any]]) -> list[int]:
    """The Agora ids a page of posts names (authors, mentions)."""
    ids = []
    for post in posts:
        ids.append(post["author"]["id"])
        ids.extend(user["id"] for user in post["mentions"])
    return ids

"""@mentions in free text (posts, comments): which names are mentioned, and which users
they name, resolved by one batch lookup at users (`GET /api/v1/users?usernames=`).

In the kit because two services resolve them the same way (posts, engagement's comments).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import ApiError
from .http_client import HttpClient

# @username (users' rule: 3 to 30 of A-Z a-z 0-9 _ . -), not inside a word or an address.
MENTION = re.compile(r"(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{3,30})(?![A-Za-z0-9_-])")
MAX_MENTIONS = 100  # distinct names looked up (users' batch limit); later ones stay text


def mention_candidates(words: Sequence[str]) -> list[str]:
    """The lower-case usernames @-named, in order, repeats dropped. A name that ends in
    '.' or '-' (the end of a sentence) is also tried without them."""
    names: dict[str, None] = {}
    for piece in words:
        for match in MENTION.finditer(piece):
            name = match.group(1).lower()
            names[name] = None
            stripped = name.rstrip(".-")
            if len(stripped) >= 3:
                names[stripped] = None
    return list(names)[:MAX_MENTIONS]


def mentioned(words: Sequence[str], known: dict[str, dict]) -> list[dict]:
    """The users named, in order of first mention, given `known` (lower-case username
    -> user) from users: the longest spelling that names a user wins."""
    users: dict[int, dict] = {}
    for piece in words:
        for match in MENTION.finditer(piece):
            name = match.group(1).lower()
            user = known.get(name) or known.get(name.rstrip(".-"))
            if user is not None:
                users.setdefault(user["id"], {"id": user["id"], "username": user["username"]})
    return list(users.values())


async def known_users(client: HttpClient, usernames: list[str]) -> dict[str, dict[str, Any]]:
    """lower-case username -> {id, username} of those of `usernames` that are users."""
    if not usernames:
        return {}
    response = await client.get("users", "/api/v1/users", params={"usernames": ",".join(usernames)})
    if response.status != 200:
        raise ApiError(502, f"users answered {response.status} to a lookup of mentions")
    return {user["username"].lower(): user for user in response.json()["items"]}


async def resolve_mentions(client: HttpClient, words: Sequence[str]) -> list[dict]:
    """The users @-mentioned in `words` ({id, username}), in order of first mention."""
    return mentioned(words, await known_users(client, mention_candidates(words)))

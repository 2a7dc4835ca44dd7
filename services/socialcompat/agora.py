"""socialcompat's side of Agora: the accounts DeathStarBench's ids name, their tokens,
and the native calls made with them.

An account's external id (DeathStarBench's client-chosen user_id) is stored by users,
in the same row and the same insert as the account (users' 0003 migration): the mapping
survives any restart of socialcompat and can never disagree with the accounts. Here it
is only cached, both ways, since it never changes while the account exists.

A token is a normal bearer token of the user, issued by users on its internal route to
the holder of the impersonation credential (services/kit/impersonation.py), kept until
`token_margin` seconds before it expires; so every native service checks the same
tokens it checks for any client, and compat and native calls see the same data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.kit.errors import ApiError
from services.kit.http_client import (
    HttpClient,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from services.kit.impersonation import credential_headers

LOOKUP_BATCH = 100  # users' internal lookups take at most 100 ids
TIMELINE_PAGE = 100  # timelines' largest page


@dataclass(frozen=True)
class Account:
    id: int  # Agora's
    username: str
    external_id: int | None  # DeathStarBench's user_id; None for a native account


def upstream_error(upstream: str, response: UpstreamResponse) -> ApiError:
    """A 4xx passed on with the upstream's message (a 400 as a 422: the request passed
    this service's document, so what the upstream refused is a rule the document does not
    state, such as following yourself); anything else a 502."""
    if 400 <= response.status < 500:
        try:
            message = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            message = ""
        status = 422 if response.status == 400 else response.status
        return ApiError(status, message or f"{upstream} answered {response.status}")
    return ApiError(502, f"{upstream} answered {response.status} unexpectedly")


class BoundedMap(dict):
    """A dict that forgets its oldest entries past `size` (what it holds can be asked
    again; nothing here is the source of truth)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self.size:
            del self[next(iter(self))]


class Agora:
    def __init__(
        self,
        client: HttpClient,
        credential: str,
        *,
        cache_size: int,
        token_margin: float,
    ) -> None:
        self.client = client
        self.internal = credential_headers(credential)
        self.by_external: BoundedMap = BoundedMap(cache_size)
        self.by_id: BoundedMap = BoundedMap(cache_size)
        self.by_username: BoundedMap = BoundedMap(cache_size)
        self.tokens: BoundedMap = BoundedMap(cache_size)  # id -> (token, renew at)
        self.token_margin = token_margin
        self._issuing: dict[int, asyncio.Future[str]] = {}

    # ------------------------------------------------------------ accounts

    def _remember(self, item: dict[str, Any]) -> Account:
        account = Account(item["id"], item["username"], item["external_id"])
        self.by_id.put(account.id, account)
        self.by_username.put(account.username.lower(), account)
        if account.external_id is not None:
            self.by_external.put(account.external_id, account)
        return account

    async def register(self, name: str, username: str, password: str, external_id: int) -> Account:
        account = {"name": name, "username": username, "password": password}
        try:
            response = await self.client.post(
                "users",
                "/internal/v1/accounts",
                json={**account, "external_id": external_id},
                headers=self.internal,
            )
        except (UpstreamTimeout, UpstreamUnavailable):
            # users may have made it after all (a slow hash under load, answered 504 by
            # its deadline): if so, it is registered, and saying otherwise would make the
            # caller's retry a 409.
            made = await self.by_external_id(external_id)
            if made is not None and made.username.lower() == username.lower():
                return made
            raise
        if response.status != 201:
            raise upstream_error("users", response)
        return self._remember(response.json())

    async def _lookup(self, key: str, values: Sequence[Any]) -> None:
        for start in range(0, len(values), LOOKUP_BATCH):
            chunk = values[start : start + LOOKUP_BATCH]
            response = await self.client.get(
                "users",
                "/internal/v1/accounts",
                params={key: ",".join(str(value) for value in chunk)},
                headers=self.internal,
            )
            if response.status != 200:
                raise upstream_error("users", response)
            for item in response.json()["items"]:
                self._remember(item)

    async def by_external_id(self, external_id: int) -> Account | None:
        account = self.by_external.get(external_id)
        if account is None:
            await self._lookup("external_ids", [external_id])
            account = self.by_external.get(external_id)
        return account

    async def by_name(self, username: str) -> Account | None:
        key = username.lower()
        account = self.by_username.get(key)
        if account is None and _username_like(username):
            await self._lookup("usernames", [key])
            account = self.by_username.get(key)
        return account

    async def external_ids(self, ids: Iterable[int]) -> dict[int, int | None]:
        """Agora id -> external id (None for a native account) of each known id."""
        wanted = list(dict.fromkeys(ids))
        missing = [user_id for user_id in wanted if user_id not in self.by_id]
        if missing:
            await self._lookup("ids", missing)
        return {
            user_id: self.by_id[user_id].external_id for user_id in wanted if user_id in self.by_id
        }

    # ------------------------------------------------------------ tokens

    async def token(self, account: Account) -> str:
        loop = asyncio.get_running_loop()
        held = self.tokens.get(account.id)
        if held is not None and loop.time() < held[1]:
            return held[0]
        issuing = self._issuing.get(account.id)
        if issuing is None:  # one call to users per user, however many requests wait
            issuing = loop.create_future()
            self._issuing[account.id] = issuing
            try:
                issuing.set_result(await self._issue(account.id))
            except BaseException as error:
                issuing.set_exception(error)
                issuing.exception()  # retrieved: the waiters, if any, get it too
                raise
            finally:
                del self._issuing[account.id]
        return await asyncio.shield(issuing)

    async def _issue(self, user_id: int) -> str:
        response = await self.client.post(
            "users", "/internal/v1/tokens", json={"user_id": user_id}, headers=self.internal
        )
        if response.status != 200:
            raise upstream_error("users", response)
        answer = response.json()
        lifetime = float(answer["expires_in"])
        margin = min(self.token_margin, lifetime / 2)
        renew_at = asyncio.get_running_loop().time() + lifetime - margin
        self.tokens.put(user_id, (answer["access_token"], renew_at))
        return answer["access_token"]

    async def _as(self, account: Account) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(account)}"}

    # ------------------------------------------------------------ native calls

    async def follow(self, follower: Account, followee: Account, *, on: bool) -> None:
        method = "PUT" if on else "DELETE"
        response = await self.client.request(
            "graph",
            method,
            f"/api/v1/graph/following/{followee.id}",
            headers=await self._as(follower),
        )
        if response.status != 204:
            raise upstream_error("graph", response)

    async def compose(self, author: Account, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            "posts", "/api/v1/posts", json=body, headers=await self._as(author)
        )
        if response.status != 201:
            raise upstream_error("posts", response)
        return response.json()

    async def timeline(self, account: Account, *, home: bool, start: int, stop: int) -> list[Any]:
        """Posts at positions start (inclusive) to stop (exclusive), newest first: the
        native timeline paged by its cursor up to `stop`, then sliced."""
        if home:
            path, headers = "/api/v1/timelines/home", await self._as(account)
        else:
            path, headers = f"/api/v1/timelines/users/{account.id}", {}
        posts: list[Any] = []
        before: str | None = None
        while len(posts) < stop:
            params = {"limit": str(min(TIMELINE_PAGE, stop - len(posts)))}
            if before is not None:
                params["before"] = before
            response = await self.client.get("timelines", path, params=params, headers=headers)
            if response.status != 200:
                raise upstream_error("timelines", response)
            page = response.json()
            posts.extend(page["items"])
            before = page["next"]
            if before is None or not page["items"]:
                break
        return posts[start:stop]


def _username_like(name: str) -> bool:
    return 3 <= len(name) <= 30 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)

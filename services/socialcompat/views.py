"""DeathStarBench socialNetwork's HTTP API (`/wrk2-api/...`), exactly as its workload
generator and social-graph initialiser call it, over users, posts, graph and timelines.

It acts for whichever user a request names, without a password (docs/socialcompat.md):
that is why the chart leaves it off unless `services.socialcompat.enabled` is set.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from services.kit.api import MAX_ID, Api
from services.kit.errors import ApiError
from services.kit.fields import NAME_PATTERN, digits_up_to, free_text

from .agora import Account, Agora
from .forms import (
    FORM_TYPE,
    INCOMPLETE,
    answers_in_text,
    check,
    given,
    integer,
    json_array,
    read_form,
    require,
    text,
)
from .keys import AGORA
from .translate import KINDS, dsb_post, media_of, users_in

api = Api(
    "socialcompat",
    title="Agora socialcompat (DeathStarBench socialNetwork's API)",
    description=(
        "DeathStarBench socialNetwork's /wrk2-api over Agora's users, posts, graph and"
        " timelines: form bodies (values need not be percent-encoded), plain-text answers,"
        " client-chosen numeric user ids, no token. Every failure is answered in plain"
        " text with its status; a missing argument is a 400 `Incomplete arguments`."
    ),
)
MAX_POSITION = 1000  # timelines keep at most 800 posts a home timeline
SUCCESS = "Success!"
COMPOSED = "Successfully upload post"

# ---------------------------------------------------------------- the document

ID_TEXT = {"type": "string", "pattern": f"^{digits_up_to(MAX_ID)}$", "examples": ["0"]}
POSITION_TEXT = {
    "type": "string",
    "pattern": f"^{digits_up_to(MAX_POSITION)}$",
    "examples": ["0"],
}
NAME_TEXT = {  # users' username
    "type": "string",
    "pattern": "^[A-Za-z0-9_.-]{3,30}$",
    "examples": ["username_0"],
}
# first_name and last_name make users' name ("first last", at most 200 characters): each
# has a visible character and no control character.
NAME_PART = {"type": "string", "maxLength": 99, "pattern": NAME_PATTERN}
MAX_TEXT = 2000  # posts' limit, whitespace around the text not counted
POST_TEXT = {
    "type": "string",
    "pattern": TypeAdapter(free_text(MAX_TEXT)).json_schema()["pattern"],
    "description": f"1 to {MAX_TEXT} characters; tabs and line breaks, no other control",
}
MAX_MEDIA = 10  # posts' limit
# DeathStarBench's generators send 18 random digits: leading zeros included
_MEDIA_ID = f'"0*{digits_up_to(MAX_ID)}"'
_MEDIA_TYPE = '"[a-z0-9][a-z0-9.+/-]{0,49}"'  # posts' media type
MEDIA_IDS = {
    "type": "string",
    "pattern": f"^\\[({_MEDIA_ID}(,{_MEDIA_ID}){{0,{MAX_MEDIA - 1}}})?\\]$",
    "description": 'a JSON array of ids in digits, as DeathStarBench sends it: ["123","456"]',
}
MEDIA_TYPES = {
    "type": "string",
    "pattern": f"^\\[({_MEDIA_TYPE}(,{_MEDIA_TYPE}){{0,{MAX_MEDIA - 1}}})?\\]$",
    "description": 'a JSON array, one type per id: ["png","png"]',
}
HEADERS = {"X-Request-ID": {"schema": {"type": "string"}, "required": True}}


def _text_answer(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": HEADERS,
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }


FAILURES = {
    str(status): _text_answer(why)
    for status, why in (
        (400, f"`{INCOMPLETE}`, or an argument that is not valid"),
        (404, "a user it names is not registered"),
        (409, "the username or user_id is taken"),
        (422, "media_ids and media_types, each well formed, do not pair up"),
        (502, "an Agora service failed"),
        (503, "an Agora service is unavailable"),
        (504, "an Agora service did not answer in time"),
    )
}


def _form(
    properties: dict[str, Any],
    required: list[str],
    answer: str,
    any_of: list[list[str]] | None = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if any_of:  # one of these sets of arguments, each complete
        schema["anyOf"] = [{"required": names} for names in any_of]
    return {
        "requestBody": {"required": True, "content": {FORM_TYPE: {"schema": schema}}},
        "responses": {"200": _text_answer(f"`{answer}`"), **FAILURES},
    }


DSB_POST = {
    "type": "object",
    "properties": {
        "post_id": {"type": "string"},
        "creator": {
            "type": "object",
            "properties": {"user_id": {"type": "string"}, "username": {"type": "string"}},
        },
        "req_id": {"type": "string"},
        "text": {"type": "string"},
        "user_mentions": {"type": "array", "items": {"type": "object"}},
        "media": {"type": "array", "items": {"type": "object"}},
        "urls": {"type": "array", "items": {"type": "object"}},
        "timestamp": {"type": "string", "description": "milliseconds since the epoch"},
        "post_type": {"type": "integer", "minimum": 0, "maximum": 3},
    },
}
READ_FIELDS = {"user_id": ID_TEXT, "start": POSITION_TEXT, "stop": POSITION_TEXT}
REGISTER_FIELDS = {
    "first_name": NAME_PART,
    "last_name": NAME_PART,
    "username": NAME_TEXT,
    "password": {"type": "string", "minLength": 8, "maxLength": 128},  # users' rule
    "user_id": ID_TEXT,
}
COMPOSE_FIELDS = {
    "username": NAME_TEXT,
    "user_id": ID_TEXT,
    "text": POST_TEXT,
    "media_ids": MEDIA_IDS,
    "media_types": MEDIA_TYPES,
    "post_type": {"type": "string", "enum": ["0", "1", "2", "3"]},
}
READ_DOCUMENT = {
    "parameters": [
        {"name": name, "in": "query", "required": True, "schema": schema}
        for name, schema in READ_FIELDS.items()
    ],
    "responses": {
        "200": {
            "description": "the posts at positions start to stop (exclusive), newest first;"
            " an unregistered user_id has none",
            "headers": HEADERS,
            "content": {"application/json": {"schema": {"type": "array", "items": DSB_POST}}},
        },
        **{status: FAILURES[status] for status in ("400", "502", "503", "504")},
    },
}
FOLLOW_FIELDS = {
    "user_id": ID_TEXT,
    "followee_id": ID_TEXT,
    "user_name": NAME_TEXT,
    "followee_name": NAME_TEXT,
}
FOLLOW_DOCUMENT = _form(
    FOLLOW_FIELDS,
    [],
    SUCCESS,
    any_of=[["user_id", "followee_id"], ["user_name", "followee_name"]],
)


# ---------------------------------------------------------------- helpers


def _user_id(args: dict[str, str], name: str) -> int:
    return integer(args, name, 0, MAX_ID)


async def _registered(agora: Agora, external_id: int) -> Account:
    account = await agora.by_external_id(external_id)
    if account is None:
        raise ApiError(404, f"User {external_id} is not registered")
    return account


async def _named(agora: Agora, username: str) -> Account:
    account = await agora.by_name(username)
    if account is None:
        raise ApiError(404, f"User {username} is not registered")
    return account


# ---------------------------------------------------------------- routes


@api.post(
    "/wrk2-api/user/register",
    summary="Register a user with the user_id the client chose",
    document=_form(REGISTER_FIELDS, list(REGISTER_FIELDS), SUCCESS),
)
@answers_in_text
async def register(request: web.Request) -> web.Response:
    args = await read_form(request)
    first, last, username, password, _ = require(args, *REGISTER_FIELDS)
    check(args, REGISTER_FIELDS)
    external_id = _user_id(args, "user_id")
    name = f"{first} {last}"
    await request.app[AGORA].register(name, username, password, external_id)
    return text(SUCCESS)


async def _follow(request: web.Request, *, on: bool) -> web.Response:
    args = await read_form(request)
    check(args, FOLLOW_FIELDS)
    agora = request.app[AGORA]
    if given(args, "user_id", "followee_id"):
        follower = await _registered(agora, _user_id(args, "user_id"))
        followee = await _registered(agora, _user_id(args, "followee_id"))
    elif given(args, "user_name", "followee_name"):
        follower = await _named(agora, args["user_name"])
        followee = await _named(agora, args["followee_name"])
    else:
        raise ApiError(400, INCOMPLETE, code="incomplete_arguments")
    await agora.follow(follower, followee, on=on)
    return text(SUCCESS)


@api.post(
    "/wrk2-api/user/follow",
    summary="Follow: user_id and followee_id, or user_name and followee_name",
    document=FOLLOW_DOCUMENT,
)
@answers_in_text
async def follow(request: web.Request) -> web.Response:
    return await _follow(request, on=True)


@api.post(
    "/wrk2-api/user/unfollow",
    summary="Unfollow: user_id and followee_id, or user_name and followee_name",
    document=FOLLOW_DOCUMENT,
)
@answers_in_text
async def unfollow(request: web.Request) -> web.Response:
    return await _follow(request, on=False)


@api.post(
    "/wrk2-api/post/compose",
    summary="Compose a post as user_id (mentions, URLs and media as posts handles them)",
    document=_form(COMPOSE_FIELDS, ["username", "user_id", "text", "post_type"], COMPOSED),
)
@answers_in_text
async def compose(request: web.Request) -> web.Response:
    args = await read_form(request)
    (post_text,) = require(args, "text")
    require(args, "user_id", "username", "post_type")
    check(args, COMPOSE_FIELDS)
    author_id = _user_id(args, "user_id")
    kind = KINDS[integer(args, "post_type", 0, len(KINDS) - 1)]
    media = media_of(args.get("media_ids"), args.get("media_types"))
    agora = request.app[AGORA]
    author = await _registered(agora, author_id)
    await agora.compose(author, {"text": post_text, "media": media, "kind": kind})
    return text(COMPOSED)


async def _read(request: web.Request, *, home: bool) -> web.Response:
    args = request.query
    require(args, "user_id", "start", "stop")
    check(args, READ_FIELDS)
    external_id = _user_id(dict(args), "user_id")
    start = integer(dict(args), "start", 0, MAX_POSITION)
    stop = integer(dict(args), "stop", 0, MAX_POSITION)
    agora = request.app[AGORA]
    account = await agora.by_external_id(external_id)
    if account is None or stop <= start:
        return json_array([])  # as DeathStarBench answers a user with no timeline
    posts = await agora.timeline(account, home=home, start=start, stop=stop)
    ids = await agora.external_ids(users_in(posts))
    return json_array([dsb_post(post, ids) for post in posts])


@api.get(
    "/wrk2-api/home-timeline/read",
    summary="A user's home timeline, positions start to stop",
    document=READ_DOCUMENT,
)
@answers_in_text
async def read_home_timeline(request: web.Request) -> web.Response:
    return await _read(request, home=True)


@api.get(
    "/wrk2-api/user-timeline/read",
    summary="A user's own posts, positions start to stop",
    document=READ_DOCUMENT,
)
@answers_in_text
async def read_user_timeline(request: web.Request) -> web.Response:
    return await _read(request, home=False)

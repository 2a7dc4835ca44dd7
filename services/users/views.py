"""HTTP handlers of users: users and social accounts, login, lookups for other services."""

from __future__ import annotations

from aiohttp import web

from services.kit.api import Api, Page, PageQuery, created, json_response, page, path_id
from services.kit.auth import REQUIRED, Caller, unauthorized
from services.kit.caching import PRIVATE_REVALIDATE
from services.kit.errors import ApiError, field_error, not_found
from services.kit.impersonation import require_credential
from services.kit.keys import DB_POOL, IMPERSONATION_CREDENTIAL, SETTINGS, TOKEN_SIGNER
from services.kit.ratelimit import Limit, client_address

from . import store
from .keys import LOGIN_LIMITER, PASSWORDS
from .models import (
    ADULT_AGE,
    Account,
    AccountIn,
    AccountQuery,
    LoginIn,
    Token,
    TokenFor,
    User,
    UserIn,
    UserQuery,
)

api = Api(
    "users",
    title="Agora users",
    description="Users and social accounts (username and password), login tokens, lookups.",
)
WRONG_CREDENTIALS = "Invalid username or password"


def _bad(field: str, message: str, kind: str) -> ApiError:
    return ApiError(
        400,
        f"Invalid body: {field}",
        code="validation_error",
        details=[field_error(field, message, kind)],
    )


@api.get("/api/v1/users", summary="List or look up users", query=UserQuery, response=Page[User])
async def list_users(request: web.Request, query: UserQuery) -> web.Response:
    """`ids` and/or `usernames` look up a batch (at most 100 of each, in the order asked:
    those of ids, then those of usernames not listed yet; missing ones left out; limit
    and offset do not apply); otherwise a page, filtered by `min_age` and `username`."""
    db = request.app[DB_POOL]
    if query.ids is not None or query.usernames is not None:
        items = await store.users_by_id(db, query.ids) if query.ids else []
        if query.usernames:
            listed = {item["id"] for item in items}
            more = await store.users_by_username(db, query.usernames)
            items += [item for item in more if item["id"] not in listed]
        return page(items, len(items))
    items, total = await store.list_users(
        db, query.limit, query.offset, query.min_age, query.username
    )
    return page(items, total)


@api.get(
    "/api/v1/users/adults",
    summary=f"List users aged {ADULT_AGE} or more",
    query=PageQuery,
    response=Page[User],
)
async def list_adults(request: web.Request, query: PageQuery) -> web.Response:
    items, total = await store.list_users(
        request.app[DB_POOL], query.limit, query.offset, ADULT_AGE
    )
    return page(items, total)


@api.get(
    "/api/v1/users/me",
    summary="The signed-in user",
    response=User,
    errors=[404],
    auth=REQUIRED,
    cache=PRIVATE_REVALIDATE,
)
async def get_me(request: web.Request, caller: Caller) -> web.Response:
    user = await store.get_user(request.app[DB_POOL], caller.id)
    if user is None:
        raise not_found("User", caller.id)
    return json_response(user)


@api.get(
    "/api/v1/users/{id}",
    summary="Get a user",
    response=User,
    errors=[404],
    cache=PRIVATE_REVALIDATE,
)
async def get_user(request: web.Request) -> web.Response:
    user_id = path_id(request)
    user = await store.get_user(request.app[DB_POOL], user_id)
    if user is None:
        raise not_found("User", user_id)
    return json_response(user)


@api.post(
    "/api/v1/users",
    summary="Create a user or a social account",
    body=UserIn,
    response=User,
    status=201,
    errors=[409],
)
async def create_user(request: web.Request, body: UserIn) -> web.Response:
    """With `username` and `password`: an account that can log in (age optional).
    Without: a user with a required age. A taken username (any case) or email: 409."""
    if body.username is not None and body.password is None:
        raise _bad("password", "required with a username", "missing")
    if body.password is not None and body.username is None:
        raise _bad("username", "required with a password", "missing")
    if body.username is None and body.age is None:
        raise _bad("age", "required for a user without a username", "missing")
    password_hash = None
    if body.password is not None:
        password_hash = await request.app[PASSWORDS].hash(body.password)
    user = await store.create_user(
        request.app[DB_POOL],
        request.app[SETTINGS].events_stream,
        name=body.name,
        age=body.age,
        email=body.email,
        username=body.username,
        password_hash=password_hash,
    )
    return created(user, f"/api/v1/users/{user['id']}")


@api.post(
    "/api/v1/auth/login",
    summary="Log in: a bearer token for a username and password",
    body=LoginIn,
    response=Token,
    errors=[401, 429, 503],
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """Wrong credentials are a 401 with the same message, and about the same time,
    whether the username exists or not. Failed attempts are limited per username and
    per client (429 with Retry-After)."""
    app, settings = request.app, request.app[SETTINGS]
    username = body.username.lower()
    client = client_address(request, settings.trusted_proxies)
    by_user = Limit(f"login-failures:user:{username}", settings.login_max_failures_per_username)
    by_client = Limit(f"login-failures:client:{client}", settings.login_max_failures_per_client)
    limiter, passwords = app[LOGIN_LIMITER], app[PASSWORDS]
    await limiter.attempt([by_user, by_client])
    account = await store.credentials(app[DB_POOL], username)
    stored = account["password_hash"] if account else None
    if not await passwords.verify(stored, body.password):
        raise unauthorized(WRONG_CREDENTIALS, code="invalid_credentials")
    assert account is not None and stored is not None
    await limiter.forgive(reset=[by_user.key], give_back=[by_client.key])
    if passwords.needs_rehash(stored):
        await store.replace_hash(
            app[DB_POOL], account["id"], stored, await passwords.hash(body.password)
        )
    return _token(request.app, account["id"], account["username"])


def _token(app: web.Application, user_id: int, username: str) -> web.Response:
    signer = app[TOKEN_SIGNER]
    token = signer.issue(user_id, username)
    return json_response(
        {"access_token": token, "token_type": "bearer", "expires_in": signer.ttl},
        headers={"Cache-Control": "no-store"},  # a credential (RFC 6749 5.1)
    )


# ---------------------------------------------------------------- internal routes
# For the services given the impersonation credential (socialcompat) only: under
# /internal/, which the ingress never routes, and out of the public document
# (services/kit/impersonation.py).

INTERNAL_ERRORS = [403, 404]


def _internal(request: web.Request) -> None:
    require_credential(request, request.app.get(IMPERSONATION_CREDENTIAL))


@api.post(
    "/internal/v1/accounts",
    summary="Create an account known by an external id",
    body=AccountIn,
    response=Account,
    status=201,
    errors=[*INTERNAL_ERRORS, 409],
    internal=True,
)
async def create_account(request: web.Request, body: AccountIn) -> web.Response:
    """One insert, so an account never exists without its external id. A taken
    username or external id: 409, and nothing changes."""
    _internal(request)
    user = await store.create_user(
        request.app[DB_POOL],
        request.app[SETTINGS].events_stream,
        name=body.name,
        age=None,
        email=None,
        username=body.username,
        password_hash=await request.app[PASSWORDS].hash(body.password),
        external_id=body.external_id,
    )
    account = {key: user[key] for key in ("id", "username", "external_id")}
    return created(account, f"/api/v1/users/{user['id']}")


@api.get(
    "/internal/v1/accounts",
    summary="Accounts by ids, external ids or usernames",
    query=AccountQuery,
    response=Page[Account],
    errors=INTERNAL_ERRORS,
    internal=True,
)
async def find_accounts(request: web.Request, query: AccountQuery) -> web.Response:
    """Exactly one of ids, external_ids, usernames; in the order asked, missing left out."""
    _internal(request)
    given = [
        (key, values)
        for key, values in (
            ("id", query.ids),
            ("external_id", query.external_ids),
            ("username", query.usernames),
        )
        if values is not None
    ]
    if len(given) != 1:
        raise ApiError(400, "Give one of ids, external_ids or usernames", code="validation_error")
    key, values = given[0]
    items = await store.accounts_by(request.app[DB_POOL], key, values)
    return page(items, len(items))


@api.post(
    "/internal/v1/tokens",
    summary="A bearer token of any account, without its password",
    body=TokenFor,
    response=Token,
    errors=INTERNAL_ERRORS,
    internal=True,
)
async def token_for(request: web.Request, body: TokenFor) -> web.Response:
    """The same token a login gives (same claims, key and lifetime)."""
    _internal(request)
    found = await store.accounts_by(request.app[DB_POOL], "id", [body.user_id])
    if not found:
        raise not_found("Account", body.user_id)
    return _token(request.app, found[0]["id"], found[0]["username"])

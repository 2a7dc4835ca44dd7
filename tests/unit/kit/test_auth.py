"""Bearer tokens in the kit (services/kit/auth.py): every way a token is refused, a route
that needs a user, one that takes one if sent, the 403 helper, keys, and OpenAPI."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import time

import jwt
import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from services.kit import app as kit
from services.kit.api import Api, json_response
from services.kit.auth import (
    OPTIONAL,
    REQUIRED,
    Caller,
    KeyFileError,
    TokenSigner,
    TokenVerifier,
    ensure_owner,
    key_id,
    load_public_keys,
    public_pem,
)
from services.kit.config import KitSettings
from services.kit.openapi import build_openapi
from tests.unit.conftest import AuthKeys, make_auth_keys

api = Api("authtest", title="Auth test")


@api.get("/api/v1/authtest/me", summary="Who am I", auth=REQUIRED)
async def whoami(request: web.Request, caller: Caller) -> web.Response:
    return json_response({"id": caller.id, "username": caller.username})


@api.get("/api/v1/authtest/maybe", summary="Anyone, or a user", auth=OPTIONAL)
async def maybe(request: web.Request, caller: Caller | None) -> web.Response:
    return json_response({"id": caller.id if caller else None})


@api.delete("/api/v1/authtest/things/{owner}", summary="Owner only", auth=REQUIRED, status=204)
async def delete_thing(request: web.Request, caller: Caller) -> web.Response:
    ensure_owner(caller, int(request.match_info["owner"]), "Thing 1")
    return web.Response(status=204)


@api.get("/api/v1/authtest/open", summary="Anyone")
async def anyone(request: web.Request) -> web.Response:
    return json_response({"ok": True})


@pytest.fixture
async def client(aiohttp_client, auth_keys: AuthKeys):
    settings = KitSettings(service_name="authtest", auth_public_key_file=auth_keys.public_file)
    return await aiohttp_client(kit.create_app(settings, api))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "sub": "7",
        "preferred_username": "ana",
        "iss": "agora-users",
        "aud": "agora",
        "iat": now,
        "exp": now + 600,
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def unsigned(header: dict, body: dict, signature: bytes = b"") -> str:
    head = b64(orjson.dumps(header)) + "." + b64(orjson.dumps(body))
    return head + "." + b64(signature)


async def refused(client, headers: dict[str, str], code: str, path="/api/v1/authtest/me"):
    resp = await client.get(path, headers=headers)
    assert resp.status == 401, await resp.text()
    body = await resp.json()
    assert body["code"] == code and body["error"] and body["details"] == []
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="agora"')
    return body, challenge


async def test_a_valid_token_gives_the_handler_its_caller(client, auth_keys):
    resp = await client.get("/api/v1/authtest/me", headers=auth_keys.header(7, "ana"))
    assert resp.status == 200
    assert await resp.json() == {"id": 7, "username": "ana"}
    again = await client.get("/api/v1/authtest/me", headers=auth_keys.header(7, "ana"))
    assert again.status == 200  # a second token of the same user


async def test_no_token_is_401_with_a_bare_challenge(client):
    _, challenge = await refused(client, {}, "unauthorized")
    assert challenge == 'Bearer realm="agora"'  # RFC 6750: no error code without a token


@pytest.mark.parametrize(
    "header",
    ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Bearer ", "Bearer a b", "Token abc", "bearer"],
)
async def test_a_malformed_authorization_header_is_401(client, header):
    _, challenge = await refused(client, {"Authorization": header}, "invalid_request")
    assert 'error="invalid_request"' in challenge


async def test_two_authorization_headers_are_refused(client, auth_keys):
    token = auth_keys.token(7)
    resp = await client.get(
        "/api/v1/authtest/me",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_request"


async def test_the_scheme_is_case_insensitive(client, auth_keys):
    resp = await client.get(
        "/api/v1/authtest/me", headers={"Authorization": f"bearer {auth_keys.token(7)}"}
    )
    assert resp.status == 200


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "e30.e30.e30", "...."])
async def test_a_token_that_is_no_jwt_is_401(client, garbage):
    _, challenge = await refused(client, {"Authorization": f"Bearer {garbage}"}, "invalid_token")
    assert 'error="invalid_token"' in challenge


async def test_an_expired_token_is_401(client, auth_keys):
    old = auth_keys.token(7, now=time.time() - 3600 - 31)  # past exp and the 30 s leeway
    body, challenge = await refused(client, {"Authorization": f"Bearer {old}"}, "token_expired")
    assert body["error"] == "The token has expired"
    assert 'error="invalid_token"' in challenge and "expired" in challenge


async def test_a_token_within_the_clock_skew_leeway_is_accepted(client, auth_keys):
    late = auth_keys.token(7, now=time.time() - 3600 - 10)
    resp = await client.get("/api/v1/authtest/me", headers={"Authorization": f"Bearer {late}"})
    assert resp.status == 200


async def test_a_token_signed_by_another_key_is_401(client, tmp_path):
    stranger = make_auth_keys(tmp_path)
    body, _ = await refused(client, stranger.header(7), "invalid_token")
    assert "unknown key" in body["error"]


async def test_another_key_claiming_our_key_id_is_401(client, auth_keys):
    forged = jwt.encode(
        claims(),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": auth_keys.signer.kid},
    )
    body, _ = await refused(client, {"Authorization": f"Bearer {forged}"}, "invalid_token")
    assert "signature" in body["error"]


async def test_a_tampered_token_is_401(client, auth_keys):
    head, payload, signature = auth_keys.token(7).split(".")
    changed = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    changed["sub"] = "1"  # someone else
    tampered = f"{head}.{b64(orjson.dumps(changed))}.{signature}"
    await refused(client, {"Authorization": f"Bearer {tampered}"}, "invalid_token")


async def test_alg_none_is_401(client, auth_keys):
    token = unsigned({"alg": "none", "typ": "JWT", "kid": auth_keys.signer.kid}, claims())
    body, _ = await refused(client, {"Authorization": f"Bearer {token}"}, "invalid_token")
    assert "'none'" in body["error"]


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "EdDSA", "kid": ["a", "list"]},
        {"alg": "EdDSA", "kid": {"an": "object"}},
        {"alg": "EdDSA"},
        {"alg": ["EdDSA"], "kid": "x"},
        {"alg": "é\r\nSet-Cookie: x=1" + "A" * 500, "kid": "x"},
    ],
)
async def test_odd_headers_are_401_never_500(client, header):
    _, challenge = await refused(
        client, {"Authorization": f"Bearer {unsigned(header, claims(), b'sig')}"}, "invalid_token"
    )
    assert challenge.isascii() and "\n" not in challenge and len(challenge) < 300


async def test_hmac_with_the_public_key_as_secret_is_401(client, auth_keys):
    """The algorithm confusion attack: HS256 keyed with the (public) verification key."""
    secret = public_pem(auth_keys.signer.key)  # the bytes of AUTH_PUBLIC_KEY_FILE
    header = {"alg": "HS256", "typ": "JWT", "kid": auth_keys.signer.kid}
    head = b64(orjson.dumps(header)) + "." + b64(orjson.dumps(claims()))
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    body, _ = await refused(client, {"Authorization": f"Bearer {head}.{b64(mac)}"}, "invalid_token")
    assert "HS256" in body["error"]


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "elsewhere"},
        {"iss": "someone-else"},
        {"sub": None},
        {"exp": None},
        {"preferred_username": None},
        {"sub": "ana"},
        {"sub": "0"},
        {"sub": 7},
        {"iat": int(time.time()) + 3600},  # issued in the future
    ],
)
async def test_wrong_or_missing_claims_are_401(client, auth_keys, change):
    token = jwt.encode(
        claims(**change),
        auth_keys.signer.key,
        algorithm="EdDSA",
        headers={"kid": auth_keys.signer.kid},
    )
    await refused(client, {"Authorization": f"Bearer {token}"}, "invalid_token")


async def test_optional_auth_reads_a_token_if_sent(client, auth_keys):
    anonymous = await client.get("/api/v1/authtest/maybe")
    assert anonymous.status == 200 and (await anonymous.json()) == {"id": None}
    signed_in = await client.get("/api/v1/authtest/maybe", headers=auth_keys.header(9))
    assert (await signed_in.json()) == {"id": 9}
    await refused(
        client, {"Authorization": "Bearer nope"}, "invalid_token", "/api/v1/authtest/maybe"
    )


async def test_another_users_resource_is_403(client, auth_keys):
    resp = await client.delete("/api/v1/authtest/things/8", headers=auth_keys.header(7))
    assert resp.status == 403
    assert await resp.json() == {
        "error": "Thing 1 belongs to another user",
        "code": "forbidden",
        "details": [],
    }
    mine = await client.delete("/api/v1/authtest/things/7", headers=auth_keys.header(7))
    assert mine.status == 204


async def test_auth_comes_before_the_body_and_anonymous_routes_ignore_tokens(client):
    assert (await client.get("/api/v1/authtest/open", headers={"Authorization": "x"})).status == 200


def test_the_openapi_document_states_the_security(auth_keys):
    document = build_openapi(api)
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token from POST /api/v1/auth/login (users), EdDSA-signed",
        }
    }
    paths = document["paths"]
    me = paths["/api/v1/authtest/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "WWW-Authenticate" in me["responses"]["401"]["headers"]
    assert paths["/api/v1/authtest/maybe"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert "401" in paths["/api/v1/authtest/maybe"]["get"]["responses"]
    assert "security" not in paths["/api/v1/authtest/open"]["get"]
    assert "401" not in paths["/api/v1/authtest/open"]["get"]["responses"]


def test_an_api_without_auth_has_no_security_scheme():
    plain = Api("plain", title="Plain")
    plain.get("/x", summary="x")(anyone)
    assert "securitySchemes" not in build_openapi(plain)["components"]


# ---------------------------------------------------------------- keys and settings


def test_a_service_whose_routes_need_a_user_needs_the_public_key():
    with pytest.raises(SystemExit, match="AUTH_PUBLIC_KEY_FILE"):
        kit.create_app(KitSettings(service_name="authtest"), api)


def self_signed(key: Ed25519PrivateKey) -> bytes:
    """What the chart's genSelfSignedCertWithKey makes: a certificate carrying the key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agora-auth")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None)
    )
    return cert.public_bytes(Encoding.PEM)


def test_public_keys_load_from_certificates_and_keys_side_by_side(tmp_path):
    """Rotation: the old and the new public key published together."""
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "public.pem"
    path.write_bytes(self_signed(old) + public_pem(new))
    keys = load_public_keys(path)
    assert set(keys) == {key_id(old.public_key()), key_id(new.public_key())}
    verifier = TokenVerifier(keys, issuer="agora-users", audience="agora", leeway=0)
    for key in (old, new):
        signer = TokenSigner(key, issuer="agora-users", audience="agora", ttl=60)
        assert verifier.verify(signer.issue(3, "mia")) == Caller(3, "mia")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a pem",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        ),
    ],
)
def test_an_unusable_public_key_file_stops_the_service(tmp_path, content):
    path = tmp_path / "public.pem"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match="AUTH_PUBLIC_KEY_FILE"):
        load_public_keys(path)


def test_only_ed25519_keys_are_accepted(tmp_path):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "public.pem"
    path.write_bytes(public_pem(rsa_key))  # type: ignore[arg-type]
    with pytest.raises(KeyFileError, match="Ed25519"):
        load_public_keys(path)


def test_a_missing_key_file_stops_the_service(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read"):
        load_public_keys(tmp_path / "absent.pem")


def test_a_signer_whose_key_the_verifiers_do_not_know_stops_the_service(tmp_path, auth_keys):
    stranger = make_auth_keys(tmp_path)
    settings = KitSettings(
        service_name="authtest",
        auth_public_key_file=auth_keys.public_file,
        auth_private_key_file=stranger.private_file,
    )
    with pytest.raises(SystemExit, match="AUTH_PRIVATE_KEY_FILE"):
        kit.create_app(settings, api)


def test_a_remembered_token_still_expires(auth_keys):
    verifier = TokenVerifier(
        load_public_keys(auth_keys.public_file), issuer="agora-users", audience="agora", leeway=0
    )
    token = auth_keys.token(5)
    assert verifier.verify(token) == Caller(5, "someone")
    later = time.time() + 3601
    with pytest.raises(Exception) as refused_later:
        verifier.verify(token, now=later)
    assert refused_later.value.status == 401  # type: ignore[attr-defined]


def test_the_memory_of_verified_tokens_is_bounded(auth_keys):
    verifier = TokenVerifier(
        load_public_keys(auth_keys.public_file),
        issuer="agora-users",
        audience="agora",
        leeway=0,
        cache_size=3,
    )
    for user in range(1, 6):
        verifier.verify(auth_keys.token(user))
    assert len(verifier._verified) == 3

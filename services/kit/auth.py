"""Bearer tokens: issued by users, checked by every service.

A token is a JWT signed with EdDSA (Ed25519, by PyJWT with `cryptography`): users holds the
private key (AUTH_PRIVATE_KEY_FILE) and signs one at login; every service that has the
public key (AUTH_PUBLIC_KEY_FILE) checks it locally, without calling users. Claims:

    sub                 the user's id (decimal text, as JWT wants)
    preferred_username  their username (usernames never change)
    iss, aud            AUTH_ISSUER and AUTH_AUDIENCE; both are checked
    iat, exp            issued at, expires (AUTH_TOKEN_TTL after); exp is checked with
                        AUTH_LEEWAY seconds of clock skew allowed
    jti                 a random id of the token
    (header) kid        which key signed it: a thumbprint of its public key, so that a
                        key can be rotated by publishing the new public key beside the old

Only EdDSA is accepted: `alg: none`, HMAC with the public key as secret and every other
algorithm are refused, as are unknown keys and missing claims.

A route declares what it needs: `@api.get(..., auth=REQUIRED)` (or OPTIONAL) and its
handler gets `caller: Caller` (with OPTIONAL: `Caller | None`, None without a token).
Without a token (REQUIRED), with a malformed Authorization header, or with a token that
is expired, wrongly signed or otherwise invalid, the answer is a 401 in the error shape
with `WWW-Authenticate: Bearer realm="agora"[, error=...]` (RFC 6750); with OPTIONAL
too, a token that is sent must be valid. `ensure_owner` / `forbidden` give the 403 for
acting on another user's resource.

A verified token is remembered (a bounded map, until it expires): checking an Ed25519
signature costs ~0.15 ms on these machines, more than the rest of a request
(BENCHMARKS.md, Auth).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from .config import KitSettings
from .errors import ApiError

ALGORITHM = "EdDSA"
REALM = "agora"
REQUIRED: Literal["required"] = "required"
OPTIONAL: Literal["optional"] = "optional"
Auth = Literal["required", "optional"] | None
SECURITY_SCHEME = "bearerAuth"  # its name in the OpenAPI document
CLAIMS = ("sub", "preferred_username", "iss", "aud", "iat", "exp")
CACHE_SIZE = 10_000  # verified tokens remembered per worker
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n.+?\r?\n-----END \1-----", re.DOTALL)


class KeyFileError(SystemExit):
    """A key file that cannot be used: the process stops, naming the variable."""

    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"configuration error: {variable}: {why}")


@dataclass(frozen=True)
class Caller:
    """Who sent the request, from a verified token."""

    id: int
    username: str


def key_id(public_key: Ed25519PublicKey) -> str:
    """The `kid` of a key: the first 16 characters of its SPKI SHA-256, base64url."""
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()[:16]


def public_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def write_keypair(directory: Path) -> Ed25519PrivateKey:
    """A new keypair as devstack (and the tests) keep it: `private.pem` (PKCS#8, readable
    by its owner only) and `public.pem` (SubjectPublicKeyInfo) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = directory / "private.pem"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    private.chmod(0o600)
    (directory / "public.pem").write_bytes(public_pem(key))
    return key


def load_public_keys(
    path: str | Path, variable: str = "AUTH_PUBLIC_KEY_FILE"
) -> dict[str, Ed25519PublicKey]:
    """Every Ed25519 key in a PEM file (public keys, or certificates that carry one, as
    the chart's are), by key id."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise KeyFileError(variable, f"cannot read {path}: {error.strerror}") from None
    keys: dict[str, Ed25519PublicKey] = {}
    for block in _PEM_BLOCK.finditer(text):
        kind = block.group(1)
        try:
            if kind == b"CERTIFICATE":
                key = x509.load_pem_x509_certificate(block.group(0)).public_key()
            elif kind == b"PUBLIC KEY":
                key = load_pem_public_key(block.group(0))
            else:
                raise KeyFileError(variable, f"{path} holds a {kind.decode()}, not a public key")
        except ValueError as error:
            raise KeyFileError(variable, f"{path}: {error}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(variable, f"{path}: only Ed25519 keys are accepted")
        keys[key_id(key)] = key
    if not keys:
        raise KeyFileError(variable, f"{path} holds no PEM public key or certificate")
    return keys


def load_private_key(
    path: str | Path, variable: str = "AUTH_PRIVATE_KEY_FILE"
) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as error:
        raise KeyFileError(variable, f"cannot read {path}: {error.strerror}") from None
    except (ValueError, TypeError) as error:
        raise KeyFileError(variable, f"{path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(variable, f"{path}: only Ed25519 keys are accepted")
    return key


# ---------------------------------------------------------------- issuing


class TokenSigner:
    """Issues tokens (only the service given the private key: users)."""

    def __init__(
        self, private_key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl: int
    ) -> None:
        self.key = private_key
        self.kid = key_id(private_key.public_key())
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(self, user_id: int, username: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": str(user_id),
            "preferred_username": username,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + self.ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})


# ---------------------------------------------------------------- checking


def unauthorized(message: str, *, code: str, error: str | None = None) -> ApiError:
    """A 401 in the error shape, with the WWW-Authenticate challenge RFC 6750 asks for."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        # A quoted-string of printable ASCII (RFC 6750 3): a token's own words (its alg,
        # say) never reach the header as they came.
        printable = (c if " " <= c <= "~" and c not in '"\\' else "?" for c in message)
        challenge += f', error="{error}", error_description="{"".join(printable)[:200]}"'
    return ApiError(401, message, code=code, headers={"WWW-Authenticate": challenge})


def invalid_token(why: str) -> ApiError:
    return unauthorized(f"The token is invalid: {why}", code="invalid_token", error="invalid_token")


def forbidden(message: str) -> ApiError:
    """A 403: the caller is known but may not do this (another user's resource)."""
    return ApiError(403, message, code="forbidden")


def ensure_owner(caller: Caller, owner_id: int, what: str) -> None:
    """403 unless the caller is the owner of `what` (e.g. "Post 7")."""
    if caller.id != owner_id:
        raise forbidden(f"{what} belongs to another user")


class TokenVerifier:
    """Checks tokens against the public keys (every service that has them)."""

    def __init__(
        self,
        public_keys: Mapping[str, Ed25519PublicKey],
        *,
        issuer: str,
        audience: str,
        leeway: float,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.keys = dict(public_keys)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: dict[str, tuple[Caller, float]] = {}  # token -> (caller, exp)

    def verify(self, token: str, *, now: float | None = None) -> Caller:
        """The caller a token names; ApiError 401 for any token that is not valid now."""
        now = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            caller, expires = known
            if now <= expires + self.leeway:
                return caller
            del self._verified[token]
            raise unauthorized("The token has expired", code="token_expired", error="invalid_token")
        caller, expires = self._decode(token)
        if self.cache_size > 0:  # 0: check every time (for the benchmark)
            if len(self._verified) >= self.cache_size:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = (caller, expires)
        return caller

    def _decode(self, token: str) -> tuple[Caller, float]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm, kid = header.get("alg"), header.get("kid")
            if algorithm != ALGORITHM:
                raise invalid_token(f"algorithm {ascii(algorithm)[:40]} is not accepted")
            key = self.keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise invalid_token("signed by an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized(
                "The token has expired", code="token_expired", error="invalid_token"
            ) from None
        except jwt.InvalidSignatureError:
            raise invalid_token("the signature does not match") from None
        except jwt.InvalidTokenError as error:
            raise invalid_token(str(error) or type(error).__name__) from None
        subject, username = claims["sub"], claims["preferred_username"]
        if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
            raise invalid_token("sub is not a user id")
        if not isinstance(username, str) or not username:
            raise invalid_token("preferred_username is not a username")
        if int(subject) < 1 or int(subject) > 2**63 - 1:
            raise invalid_token("sub is not a user id")
        return Caller(int(subject), username), float(claims["exp"])


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <token>`; None without the header; 401 when
    the header is there but is not one bearer token."""
    values = request.headers.getall("Authorization", [])
    if not values:
        return None
    # Split by hand: a case-insensitive regular expression took 20-30 us per request.
    scheme, _, rest = values[0].strip().partition(" ")
    token = rest.lstrip(" ")
    if len(values) != 1 or scheme.lower() != "bearer" or not token or " " in token:
        raise unauthorized(
            "The Authorization header must be one 'Bearer <token>'",
            code="invalid_request",
            error="invalid_request",
        )
    return token


def authenticate(request: web.Request, verifier: TokenVerifier, *, required: bool) -> Caller | None:
    """The caller of a request (see the module's docstring for the answers)."""
    token = bearer_token(request)
    if token is None:
        if required:
            raise unauthorized(
                "This needs a signed-in user: send Authorization: Bearer <token>",
                code="unauthorized",
            )
        return None
    return verifier.verify(token)


def verifier_from(settings: KitSettings) -> TokenVerifier | None:
    """The verifier of a service given AUTH_PUBLIC_KEY_FILE (None without it)."""
    if not settings.auth_public_key_file:
        return None
    return TokenVerifier(
        load_public_keys(settings.auth_public_key_file),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway=settings.auth_leeway,
    )


def signer_from(settings: KitSettings, verifier: TokenVerifier | None) -> TokenSigner | None:
    """The signer of a service given AUTH_PRIVATE_KEY_FILE (None without it); its key
    must be one the verifiers know, or every token it issued would be refused."""
    if not settings.auth_private_key_file:
        return None
    signer = TokenSigner(
        load_private_key(settings.auth_private_key_file),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        ttl=settings.auth_token_ttl,
    )
    if verifier is None or signer.kid not in verifier.keys:
        raise KeyFileError(
            "AUTH_PRIVATE_KEY_FILE",
            "its public key is not in AUTH_PUBLIC_KEY_FILE: the tokens it signs would be refused",
        )
    return signer

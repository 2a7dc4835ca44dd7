"""A service acting for a user without their password: the internal credential.

One service may ask users for a normal bearer token of any user (socialcompat does, to
serve DeathStarBench's API, which names users but never logs in). users answers that
only to a caller that shows the impersonation credential: a random secret made once
(devstack: `.run/<dir>/impersonation/credential`; chart: a Secret kept by lookup) and
given to users and to the services with `impersonation: use` only. Its routes live
under /internal/, which no ingress prefix covers, so the ingress never routes them; and
the header is compared in constant time (hmac.compare_digest).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from aiohttp import web

from .auth import KeyFileError
from .errors import ApiError

HEADER = "X-Agora-Impersonation"
VARIABLE = "IMPERSONATION_CREDENTIAL_FILE"
MIN_LENGTH = 32


def load_credential(path: str | Path, variable: str = VARIABLE) -> str:
    """The credential in `path` (surrounding whitespace dropped); the process stops,
    naming the variable, when it cannot be read or is too short to be a secret."""
    try:
        text = Path(path).read_text().strip()
    except OSError as error:
        raise KeyFileError(variable, f"cannot read {path}: {error.strerror}") from None
    if len(text) < MIN_LENGTH or not text.isascii() or not text.isprintable():
        raise KeyFileError(variable, f"{path} must hold {MIN_LENGTH}+ printable ASCII characters")
    return text


def write_credential(path: Path) -> str:
    """A new credential, readable by its owner only (devstack, tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    credential = secrets.token_urlsafe(48)
    path.write_text(credential + "\n")
    path.chmod(0o600)
    return credential


def require_credential(request: web.Request, expected: str | None) -> None:
    """403 unless the request shows the credential. A service without one configured
    refuses every such call (404: for it the route does not exist)."""
    if expected is None:
        raise ApiError(404, "Not found", code="not_found")
    shown = request.headers.get(HEADER, "")
    if not hmac.compare_digest(shown.encode(), expected.encode()):
        raise ApiError(403, "This route is for Agora's own services", code="forbidden")


def credential_headers(credential: str) -> dict[str, str]:
    return {HEADER: credential}

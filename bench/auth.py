"""Auth: what a login costs (argon2id) and what checking a token adds to a GET, side by
side through the ingress; plus, in-process, one argon2id hash and one token check (the
signature verified, and remembered)."""

from __future__ import annotations

import statistics
import time
import uuid

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit.auth import TokenSigner, TokenVerifier, key_id
from services.users.passwords import Passwords

from .common import BenchEnv, interleaved, table, wrk

SECONDS = 5
ROUNDS = 3
CONNECTIONS = 16
PASSWORD = "bench password 1"

WITH_TOKEN = 'wrk.headers["Authorization"] = "Bearer %(token)s"\n'
LOGIN = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username": "%(username)s", "password": "%(password)s"}'
"""


def _account(client: httpx.Client) -> tuple[int, str, str]:
    username = f"bench_{uuid.uuid4().hex[:8]}"
    body = {"name": "Bench", "username": username, "password": PASSWORD}
    user = client.post("/api/v1/users", json=body)
    user.raise_for_status()
    login = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    login.raise_for_status()
    return user.json()["id"], username, login.json()["access_token"]


def _in_process() -> dict[str, float]:
    """Milliseconds: an argon2id hash with users' parameters; microseconds: a token
    check with its signature verified, and one remembered."""
    passwords = Passwords(time_cost=2, memory_kib=19 * 1024, parallelism=1, threads=1)
    hashes = []
    for _ in range(15):
        started = time.perf_counter()
        passwords.hasher.hash(PASSWORD)
        hashes.append((time.perf_counter() - started) * 1000)
    passwords.close()
    key = Ed25519PrivateKey.generate()
    signer = TokenSigner(key, issuer="i", audience="a", ttl=3600)
    tokens = [signer.issue(n, "bench") for n in range(1, 2001)]

    def verifier() -> TokenVerifier:
        return TokenVerifier(
            {key_id(key.public_key()): key.public_key()}, issuer="i", audience="a", leeway=0
        )

    cold, warm = verifier(), verifier()
    for token in tokens:
        warm.verify(token)
    timings: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(5):
        cold = verifier()
        for name, which in (("cold", cold), ("warm", warm)):
            started = time.perf_counter()
            for token in tokens:
                which.verify(token)
            timings[name].append((time.perf_counter() - started) / len(tokens) * 1e6)
    return {
        "hash_ms": statistics.median(hashes),
        "verify_us": statistics.median(timings["cold"]),
        "remembered_us": statistics.median(timings["warm"]),
    }


def run(env: BenchEnv) -> str:
    url = env.agora_url
    with httpx.Client(base_url=url, timeout=30) as client:
        user_id, username, token = _account(client)
    values = {"token": token, "username": username, "password": PASSWORD}
    cases = [
        ("GET kit handler, anonymous", f"{url}/bench/kit/1", None),
        ("GET kit handler, token checked", f"{url}/bench/kit/auth/1", WITH_TOKEN),
        ("GET /api/v1/users/{id}, anonymous", f"{url}/api/v1/users/{user_id}", None),
        ("GET /api/v1/users/me, token checked", f"{url}/api/v1/users/me", WITH_TOKEN),
        ("POST /api/v1/auth/login", f"{url}/api/v1/auth/login", LOGIN),
    ]
    results = interleaved(
        [
            (
                name,
                lambda u=target, n=name, lua=script: wrk(
                    n,
                    u,
                    seconds=SECONDS,
                    connections=CONNECTIONS,
                    lua=lua % values if lua else None,
                ),
            )
            for name, target, script in cases
        ],
        rounds=ROUNDS,
    )
    rate = {r.name: r.requests_per_s for r in results}
    micro = _in_process()
    kit_cost = 1 - rate["GET kit handler, token checked"] / rate["GET kit handler, anonymous"]
    users_cost = (
        1 - rate["GET /api/v1/users/me, token checked"] / rate["GET /api/v1/users/{id}, anonymous"]
    )
    return "\n".join(
        [
            "## Auth: login (argon2id) and token-checked GETs",
            "",
            f"wrk -t2 -c{CONNECTIONS}, {SECONDS} s per case, {ROUNDS} interleaved rounds, "
            "medians, through the ingress; the same token for every request (what a client "
            "sends), so after the first request per worker its check is remembered. users: "
            "1 replica x 2 workers, one hashing thread each.",
            "",
            table(results, baseline="GET kit handler, anonymous"),
            "",
            f"A checked token costs {kit_cost * 100:.1f} % of the kit handler's throughput "
            f"and {users_cost * 100:.1f} % of a users GET (which reads PostgreSQL either way). "
            f"In-process: one argon2id hash (t=2, m=19 MiB, p=1) {micro['hash_ms']:.1f} ms; "
            f"a token check with its Ed25519 signature verified {micro['verify_us']:.0f} us, "
            f"remembered {micro['remembered_us']:.1f} us.",
        ]
    )


if __name__ == "__main__":  # the in-process part alone: python -m bench.auth
    print(_in_process())

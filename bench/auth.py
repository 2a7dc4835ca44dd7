"""Auth: what a login costs (argon2id) and what checking a token adds to a GET, side by
side through the ingress; plus, in-process (no network, no nginx: a few microseconds are
not lost in the noise), the same handler anonymous, with its token remembered and with its
signature verified every time, and one argon2id hash with users' parameters."""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import uvloop
from aiohttp.test_utils import make_mocked_request

from services.kit.auth import TokenSigner, write_keypair
from services.kit.config import KitSettings
from services.kit.keys import TOKEN_VERIFIER
from services.users.passwords import Passwords

from . import kit_app
from .common import BenchEnv, interleaved, table, wrk

SECONDS = 5
ROUNDS = 3
CONNECTIONS = 16
LOGIN_CONNECTIONS = 4  # two workers hash one at a time each: more would only queue
ACCOUNTS = 32  # logins rotate over them: one user rarely logs in twice at once
PASSWORD = "bench password 1"
REQUESTS = 3_000  # per in-process round

WITH_TOKEN = 'wrk.headers["Authorization"] = "Bearer %(token)s"\n'
LOGIN = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local names = {%(names)s}
local counter = 0
function request()
  counter = counter + 1
  local body = '{"username": "' .. names[counter %% #names + 1] .. '", "password": "%(password)s"}'
  return wrk.format(nil, nil, nil, body)
end
"""

ANONYMOUS = "kit handler, anonymous"
REMEMBERED = "kit handler, token remembered"
VERIFIED = "kit handler, token verified every time"


def _accounts(client: httpx.Client) -> tuple[int, list[str], str]:
    names = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(ACCOUNTS)]
    ids = []
    for name in names:
        user = client.post(
            "/api/v1/users", json={"name": "Bench", "username": name, "password": PASSWORD}
        )
        user.raise_for_status()
        ids.append(user.json()["id"])
    login = client.post("/api/v1/auth/login", json={"username": names[0], "password": PASSWORD})
    login.raise_for_status()
    return ids[0], names, login.json()["access_token"]


def argon2_ms() -> float:
    passwords = Passwords(time_cost=2, memory_kib=19 * 1024, parallelism=1, threads=1)
    timings = []
    for _ in range(15):
        started = time.perf_counter()
        passwords.hasher.hash(PASSWORD)
        timings.append((time.perf_counter() - started) * 1000)
    passwords.close()
    return statistics.median(timings)


async def per_request_microseconds() -> dict[str, float]:
    keys = Path(tempfile.mkdtemp(prefix="agora-bench-auth-"))
    key = write_keypair(keys)
    token = TokenSigner(key, issuer="agora-users", audience="agora", ttl=3600).issue(1, "bench")
    settings = KitSettings(
        service_name="bench-kit",
        access_log_sample=0.0,
        auth_public_key_file=str(keys / "public.pem"),
    )
    apps = {name: kit_app.create_app(settings) for name in (ANONYMOUS, REMEMBERED, VERIFIED)}
    apps[VERIFIED][TOKEN_VERIFIER].cache_size = 0
    paths = {
        ANONYMOUS: "/bench/kit/1",
        REMEMBERED: "/bench/kit/auth/1",
        VERIFIED: "/bench/kit/auth/1",
    }
    headers = {"Authorization": f"Bearer {token}"}
    for app in apps.values():
        app.freeze()
        await app.startup()
    requests = {
        name: [
            make_mocked_request("GET", paths[name], headers=headers, app=app)
            for _ in range(REQUESTS)
        ]
        for name, app in apps.items()
    }
    gc.collect()
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(5):
        for name, app in apps.items():
            started = time.perf_counter()
            for request in requests[name]:
                response = await app._handle(request)
                assert response.status == 200, response.status
            timings[name].append((time.perf_counter() - started) / REQUESTS * 1e6)
    for app in apps.values():
        await app.cleanup()
    return {name: statistics.median(values) for name, values in timings.items()}


def run(env: BenchEnv) -> str:
    url = env.agora_url
    with httpx.Client(base_url=url, timeout=30) as client:
        user_id, names, token = _accounts(client)
    values = {
        "token": token,
        "names": ", ".join(f'"{name}"' for name in names),
        "password": PASSWORD,
    }
    cases = [
        ("GET kit handler, anonymous", f"{url}/bench/kit/1", None, CONNECTIONS),
        ("GET kit handler, token checked", f"{url}/bench/kit/auth/1", WITH_TOKEN, CONNECTIONS),
        ("GET /api/v1/users/{id}, anonymous", f"{url}/api/v1/users/{user_id}", None, CONNECTIONS),
        ("GET /api/v1/users/me, token checked", f"{url}/api/v1/users/me", WITH_TOKEN, CONNECTIONS),
        ("GET kit handler, anonymous, again", f"{url}/bench/kit/2", None, CONNECTIONS),
        ("POST /api/v1/auth/login", f"{url}/api/v1/auth/login", LOGIN, LOGIN_CONNECTIONS),
    ]

    def case(target: str, name: str, script: str | None, connections: int):
        lua = script % values if script else None
        return lambda: wrk(name, target, seconds=SECONDS, connections=connections, lua=lua)

    results = interleaved(
        [(name, case(target, name, script, c)) for name, target, script, c in cases],
        rounds=ROUNDS,
    )
    rate = {r.name: r.requests_per_s for r in results}
    micro = uvloop.run(per_request_microseconds())
    hash_ms = argon2_ms()
    kit_cost = 1 - rate["GET kit handler, token checked"] / rate["GET kit handler, anonymous"]
    noise = abs(1 - rate["GET kit handler, anonymous, again"] / rate["GET kit handler, anonymous"])
    users_cost = (
        1 - rate["GET /api/v1/users/me, token checked"] / rate["GET /api/v1/users/{id}, anonymous"]
    )
    return "\n".join(
        [
            "## Auth: login (argon2id) and token-checked GETs",
            "",
            f"wrk -t2 -c{CONNECTIONS} (logins -c{LOGIN_CONNECTIONS}), {SECONDS} s per case, "
            f"{ROUNDS} interleaved rounds, "
            "medians, through the ingress. GETs send one token (what a client does), so after "
            "its first request per worker the check is remembered; logins rotate over "
            f"{ACCOUNTS} accounts. users: 1 replica x 2 workers, one hashing thread each.",
            "",
            table(results, baseline="GET kit handler, anonymous"),
            "",
            f"Through the ingress a checked token cost {kit_cost * 100:.1f} % of the kit "
            f"handler's throughput and {users_cost * 100:.1f} % of a users GET (PostgreSQL "
            f"either way); noise floor (the anonymous case twice) {noise * 100:.1f} %. "
            "In-process, per request (aiohttp from routing to the response, no "
            f"network; median of 5 x {REQUESTS:,}): anonymous {micro[ANONYMOUS]:.1f} us, "
            f"token remembered {micro[REMEMBERED]:.1f} us "
            f"(+{micro[REMEMBERED] - micro[ANONYMOUS]:.1f}), token verified every time "
            f"{micro[VERIFIED]:.1f} us (+{micro[VERIFIED] - micro[ANONYMOUS]:.1f}: the Ed25519 "
            f"signature, and why tokens are remembered). One argon2id hash (t=2, m=19 MiB, "
            f"p=1), what a login or a registration costs: {hash_ms:.1f} ms.",
        ]
    )


if __name__ == "__main__":  # the in-process part alone: python -m bench.auth
    print(uvloop.run(per_request_microseconds()), f"argon2id {argon2_ms():.1f} ms")

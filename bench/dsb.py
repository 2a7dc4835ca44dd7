"""DeathStarBench's socialNetwork workload against Agora, through socialcompat and the
ingress (`make bench BENCH=dsb`).

1. socfb-Reed98 loaded as DeathStarBench's initialiser does (bench/dsb_graph.py): each
   phase's time, rate and errors.
2. Closed loop (wrk, a Lua script of our own with DeathStarBench's request shapes), cases
   interleaved in rounds: GET of a product (the anchor of every table), the mixed
   workload (60 % home-timeline reads, 30 % user-timeline reads, 10 % composes), and each
   of its three requests alone; users uniform over 0..N-1, reads at start 0..100 with
   stop = start + 10, composes of 256 alphanumerics, 1-6 mentions, 1-6 URLs and 1-5
   media. CPU per request per process group (nginx, PostgreSQL, Redis, each service) of
   the devstack, from /proc, so other load on the machine does not count.
3. Open loop: the mixed workload at half the mixed saturation rate, sent at fixed
   instants (wrk2-style constant rate) by an asyncio driver; latency from each request's
   scheduled instant, so a stall is not hidden (no coordinated omission).
4. The fan-out lag (timelines' timeline_fanout_lag_seconds) during the mixed runs, from
   Prometheus.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import string
import time

import aiohttp
import httpx

from .common import BenchEnv, Result, cpu_by_group, interleaved, local_only, table, wrk
from .dsb_graph import DATASET, load, phases_table, read_graph

SECONDS = int(os.environ.get("DSB_SECONDS", "10"))
ROUNDS = int(os.environ.get("DSB_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("DSB_CONNECTIONS", "32"))
OPEN_LOOP_SECONDS = int(os.environ.get("DSB_OPEN_LOOP_SECONDS", "20"))
ANCHOR = "GET /api/v1/products/{id}"
MIXED = "mixed (60/30/10)"
ALNUM = string.ascii_letters + string.digits

# A wrk script: DeathStarBench's three requests in the given shares, users 0..N-1.
LUA = r"""
local users = %(users)d
local home, user = %(home)f, %(user)f
local alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) math.randomseed(os.time() * 1000 + id) end
local function chars(set, n)
  local out = {}
  for i = 1, n do local k = math.random(1, #set); out[i] = set:sub(k, k) end
  return table.concat(out)
end
local function read(which)
  local start = math.random(0, 100)
  return wrk.format("GET", "/wrk2-api/" .. which .. "-timeline/read?user_id="
    .. math.random(0, users - 1) .. "&start=" .. start .. "&stop=" .. (start + 10),
    {["Content-Type"] = "application/x-www-form-urlencoded"})
end
local function compose()
  local id = math.random(0, users - 1)
  local text = chars(alnum, 256)
  for i = 1, math.random(1, 6) do
    local other = math.random(0, users - 1)
    if other == id then other = (other + 1) %% users end
    text = text .. " @username_" .. other
  end
  for i = 1, math.random(1, 6) do text = text .. " http://" .. chars(alnum, 64) end
  local ids, types = {}, {}
  for i = 1, math.random(1, 5) do
    ids[i] = '"' .. chars("0123456789", 18) .. '"'; types[i] = '"png"'
  end
  local body = "username=username_" .. id .. "&user_id=" .. id .. "&text=" .. text
    .. "&media_ids=[" .. table.concat(ids, ",") .. "]&media_types=["
    .. table.concat(types, ",") .. "]&post_type=0"
  return wrk.format("POST", "/wrk2-api/post/compose",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
request = function()
  local coin = math.random()
  if coin < home then return read("home")
  elseif coin < home + user then return read("user")
  else return compose() end
end
"""
MIXES = {
    MIXED: (0.6, 0.3),
    "home-timeline read alone": (1.0, 0.0),
    "user-timeline read alone": (0.0, 1.0),
    "compose alone": (0.0, 0.0),
}


# ---------------------------------------------------------------- CPU per process group


def cpu_per_request(before: dict[str, float], after: dict[str, float], requests: float) -> dict:
    return {
        name: (after.get(name, 0.0) - before.get(name, 0.0)) / requests * 1000
        for name in after
        if requests
    }


# ---------------------------------------------------------------- open loop


def _mixed_request(users: int, rng: random.Random) -> tuple[str, str, bytes | None]:
    coin = rng.random()
    if coin < 0.9:
        which = "home" if coin < 0.6 else "user"
        start = rng.randint(0, 100)
        uid = rng.randrange(users)
        path = f"/wrk2-api/{which}-timeline/read?user_id={uid}&start={start}&stop={start + 10}"
        return "GET", path, None
    uid = rng.randrange(users)
    text = "".join(rng.choices(ALNUM, k=256))
    for _ in range(rng.randint(1, 6)):
        text += f" @username_{(uid + rng.randrange(1, users)) % users}"
    for _ in range(rng.randint(1, 6)):
        text += " http://" + "".join(rng.choices(ALNUM, k=64))
    media = [f'"{"".join(rng.choices(string.digits, k=18))}"' for _ in range(rng.randint(1, 5))]
    types = ",".join(['"png"'] * len(media))
    body = (
        f"username=username_{uid}&user_id={uid}&text={text}"
        f"&media_ids=[{','.join(media)}]&media_types=[{types}]&post_type=0"
    )
    return "POST", "/wrk2-api/post/compose", body.encode()


async def open_loop(url: str, users: int, rate: float, seconds: int) -> dict[str, float]:
    """The mixed workload sent at `rate` per second, each request at its own instant."""
    rng = random.Random(7)
    count = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    late_starts = 0
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=2000), timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        loop = asyncio.get_running_loop()
        begin = loop.time() + 0.5

        async def one(n: int) -> None:
            nonlocal errors, late_starts
            method, path, body = _mixed_request(users, rng)
            due = begin + n / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            if loop.time() - due > 0.005:
                late_starts += 1
            try:
                async with session.request(method, url + path, data=body, headers=headers) as r:
                    await r.read()
                    if r.status >= 300:
                        errors += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append((loop.time() - due) * 1000)

        await asyncio.gather(*(one(n) for n in range(count)))
    latencies.sort()

    def q(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))]

    return {
        "rate": rate,
        "sent": count,
        "p50": q(0.5),
        "p99": q(0.99),
        "p999": q(0.999),
        "errors": errors,
        "late": late_starts,
    }


# ---------------------------------------------------------------- fan-out lag


def fanout_lag(prometheus_url: str, window_s: int) -> tuple[float, float, float]:
    """p50, p99 of timelines' fan-out lag over the last `window_s` seconds, and the count."""
    out = []
    buckets = f"sum by (le) (increase(timeline_fanout_lag_seconds_bucket[{window_s}s]))"
    for query in (
        f"histogram_quantile(0.5, {buckets})",
        f"histogram_quantile(0.99, {buckets})",
        f"sum(increase(timeline_fanout_lag_seconds_count[{window_s}s]))",
    ):
        answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
        result = answer.json()["data"]["result"]
        out.append(float(result[0]["value"][1]) if result else float("nan"))
    return out[0], out[1], out[2]


# ---------------------------------------------------------------- the run


def run(env: BenchEnv) -> str:
    url = env.agora_url.rstrip("/")
    local_only(url)
    users, _ = read_graph(DATASET)
    phases = asyncio.run(load(url, DATASET))
    time.sleep(5)  # the last composes' fan-out

    cpu: dict[str, list[dict[str, float]]] = {}

    def case(name: str, target: str, lua: str | None):
        def measured() -> Result:
            before = cpu_by_group(env.run_dir)
            result = wrk(name, target, seconds=SECONDS, connections=CONNECTIONS, lua=lua)
            after = cpu_by_group(env.run_dir)
            cpu.setdefault(name, []).append(
                cpu_per_request(before, after, result.requests_per_s * SECONDS)
            )
            return result

        return name, measured

    cases = [case(ANCHOR, f"{url}/api/v1/products/1", None)]
    for name, (home, user) in MIXES.items():
        cases.append(case(name, url, LUA % {"users": users, "home": home, "user": user}))
    mixed_started = time.time()
    results = interleaved(cases, rounds=ROUNDS)
    window = int(time.time() - mixed_started) + 15
    lag50, lag99, lag_count = fanout_lag(env.prometheus_url, window)

    mixed = next(r for r in results if r.name == MIXED)
    half = asyncio.run(open_loop(url, users, mixed.requests_per_s / 2, OPEN_LOOP_SECONDS))

    groups = sorted({g for runs in cpu.values() for g in runs[0]}, key=str)
    busy = [
        g
        for g in groups
        if any(statistics.median(run.get(g, 0.0) for run in runs) >= 0.05 for runs in cpu.values())
    ]
    cpu_lines = [
        "| case | " + " | ".join(busy) + " | total |",
        "|---|" + "---:|" * (len(busy) + 1),
    ]
    for r in results:
        runs = cpu[r.name]
        medians = {g: statistics.median(run.get(g, 0.0) for run in runs) for g in groups}
        cpu_lines.append(
            f"| {r.name} | "
            + " | ".join(f"{medians[g]:.2f}" for g in busy)
            + f" | {sum(medians.values()):.2f} |"
        )
    by_name = {r.name: r for r in results}
    anchor = by_name[ANCHOR].requests_per_s
    return "\n\n".join(
        [
            "## DeathStarBench socialNetwork workload (socialcompat, `make bench BENCH=dsb`)",
            f"socfb-Reed98 ({users} users) loaded through /wrk2-api as DeathStarBench's"
            " initialiser does (register, follow both ways by username, 0-20 posts each):",
            phases_table(phases),
            f"Closed loop, wrk, {CONNECTIONS} connections, {SECONDS} s per case, median of"
            f" {ROUNDS} interleaved rounds; every non-2xx counted as an error:",
            table(results, baseline=ANCHOR),
            "Targets: home-timeline read at least 0.5x of GET product: "
            f"{by_name['home-timeline read alone'].requests_per_s / anchor:.3f}x; compose at"
            f" least 0.15x: {by_name['compose alone'].requests_per_s / anchor:.3f}x.",
            "CPU ms per request, per process group of the devstack (median over the rounds;"
            " groups under 0.05 ms in every case left out):",
            "\n".join(cpu_lines),
            f"Open loop: the mixed workload at half its saturation rate"
            f" ({half['rate']:,.0f} req/s, {half['sent']:,} requests over"
            f" {OPEN_LOOP_SECONDS} s), latency from each request's scheduled instant:"
            f" p50 {half['p50']:.1f} ms, p99 {half['p99']:.1f} ms, p99.9 {half['p999']:.1f} ms,"
            f" errors {half['errors']}; sends that left more than 5 ms late (the driver's own"
            f" lag): {half['late']}.",
            f"Fan-out lag (post committed -> in every follower's home timeline) during the"
            f" closed-loop runs: p50 {lag50 * 1000:.0f} ms, p99 {lag99 * 1000:.0f} ms"
            f" ({lag_count:,.0f} posts fanned out).",
        ]
    )

"""What every benchmark uses: wrk runs, interleaved rounds, and markdown tables.

These machines are noisy, so cases are compared inside one run: each round runs every
case once, in turn (A B C A B C ...), and a case's figure is its median over the rounds.
Tables show each case as a ratio to a baseline case of the same run.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

LATENCY_LINE = re.compile(r"^\s+(50|75|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class BenchEnv:
    agora_url: str
    prometheus_url: str
    run_dir: str

    @classmethod
    def from_env(cls) -> BenchEnv:
        return cls(
            agora_url=os.environ.get("AGORA_URL", "http://127.0.0.1:8080"),
            prometheus_url=os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:18090"),
            run_dir=os.environ.get("AGORA_RUN_DIR", ".run"),
        )


@dataclass(frozen=True)
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors
    requests: int = 0  # answers in all


# A wrk script's prelude that numbers its threads (`tid` in each thread's request()):
# what keeps the keys or ids each thread makes apart from the other threads'.
THREAD_IDS_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
"""


def local_only(url: str) -> None:
    host = httpx.URL(url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"benchmarks only target this machine, not {host}")


def wrk(
    name: str,
    url: str,
    *,
    seconds: int = 10,
    connections: int = 32,
    threads: int = 2,
    lua: str | None = None,
) -> Result:
    """One wrk run; `lua` is a wrk script (for POST bodies, headers, varying paths)."""
    local_only(url)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    script_path = None
    if lua:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(lua)
            script_path = handle.name
        command += ["-s", script_path]
    try:
        out = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    finally:
        if script_path:
            os.unlink(script_path)
    latencies = {p: float(v) * UNIT[u] for p, v, u in LATENCY_LINE.findall(out)}
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in match.groups())
    answered = re.search(r"(\d+) requests in", out)
    requests = int(answered.group(1)) if answered else 0
    return Result(name, rate, latencies["50"], latencies["90"], latencies["99"], errors, requests)


def interleaved(
    cases: Sequence[tuple[str, Callable[[], Result]]], rounds: int = 3, *, rotate: bool = False
) -> list[Result]:
    """Run every case once per round, in turn; return each case's median result. With
    `rotate`, each round starts one case later (A B C, B C A, ...), so no case always
    runs first or right after the same neighbour."""
    runs: dict[str, list[Result]] = {name: [] for name, _ in cases}
    for index in range(rounds):
        shift = index % len(cases) if rotate and cases else 0
        for name, case in [*cases[shift:], *cases[:shift]]:
            runs[name].append(case())
    return [_median(name, results) for name, results in runs.items()]


def _median(name: str, results: list[Result]) -> Result:
    return Result(
        name,
        statistics.median(r.requests_per_s for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p90_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def table(results: Sequence[Result], baseline: str | None = None) -> str:
    """A markdown table; with a baseline, each row's throughput as a ratio of it."""
    base = next((r for r in results if r.name == baseline), None)
    lines = [
        "| case | req/s | ratio | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r.requests_per_s / base.requests_per_s:.3f}" if base else "-"
        lines.append(
            f"| {r.name} | {r.requests_per_s:,.0f} | {ratio} | {r.p50_ms:.2f} | "
            f"{r.p90_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


def _process_table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """Every process's children and CPU ticks (user + system), from /proc."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = int(fields[11]) + int(fields[12])
    return children, ticks


def tree_cpu_seconds(roots: Sequence[int]) -> float:
    """CPU time used so far by these processes and all their descendants: the cost of a
    server (its gunicorn master and workers, PostgreSQL's backends, nginx's workers)
    that other load on a shared machine does not inflate the way it does wall time.
    Descendants that have exited are not counted: measure long-lived servers."""
    children, ticks = _process_table()
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += ticks.get(pid, 0)
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_by_group(run_dir: str) -> dict[str, float]:
    """CPU seconds so far of each direct child of the devstack's supervisord (and all its
    descendants), by what it runs: a service's name, nginx, postgres, redis, ..."""
    root = int((Path(run_dir) / "supervisord.pid").read_text())
    children: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = int(fields[11]) + int(fields[12])
    totals: dict[str, float] = {}
    for child in children.get(root, []):
        try:
            argv = (Path("/proc") / str(child) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv if word]
        name = _group_name(words)
        used, todo = 0, [child]
        while todo:
            pid = todo.pop()
            used += times.get(pid, 0)
            todo += children.get(pid, [])
        totals[name] = totals.get(name, 0.0) + used / os.sysconf("SC_CLK_TCK")
    return totals


def _group_name(words: list[str]) -> str:
    for n, word in enumerate(words):
        if word.endswith("agora-serve") and n + 1 < len(words):
            return words[n + 1].split(".")[-1].replace("_app", "")
    base = os.path.basename(words[0]) if words else "?"
    if "devstack.traces" in words:
        return "traces"  # devstack's trace receiver
    for known in ("nginx", "postgres", "redis", "prometheus"):
        if known in base:
            return known
    return base


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / hz, sum(values[:8]) / hz


def machine() -> str:
    """The machine a result came from, for BENCHMARKS.md."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )

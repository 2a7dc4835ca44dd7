"""python -m bench [name ...]: run the benchmarks (all by default) against AGORA_URL.

Each module listed in BENCHMARKS has `run(env: BenchEnv) -> str`, returning a markdown
section; the sections are printed and written to <AGORA_RUN_DIR>/../bench-results.md
(kept after the devstack is torn down) to be copied into BENCHMARKS.md.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

from .common import BenchEnv, local_only, machine

BENCHMARKS = [
    "kit",
    "peers",
    "pipeline",
    "cats",
    "orders",
    "realtime",
    "auth",
    "crawler",
    "canary",
    "posts",
    "social",
    "engagement",
    "dsb",
    "tracing",
]


def main(argv: list[str]) -> None:
    env = BenchEnv.from_env()
    local_only(env.agora_url)
    chosen = argv or BENCHMARKS
    sections = [f"Machine: {machine()}. Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."]
    out = Path(env.run_dir).resolve().parent / "bench-results.md"
    failed = []
    for name in chosen:
        print(f"==> bench {name}", flush=True)
        started = time.monotonic()
        try:
            section = importlib.import_module(f"bench.{name}").run(env)
        except Exception:  # one benchmark's failure is reported; the others still run
            traceback.print_exc()
            failed.append(name)
            section = f"## {name}\n\n**Failed**: see the run's output."
        print(section, flush=True)
        print(f"==> bench {name}: {time.monotonic() - started:.0f} s", flush=True)
        sections.append(section)
        out.write_text("\n\n".join(sections) + "\n")  # kept as far as it got
    print(f"==> results in {out}")
    if failed:
        sys.exit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])

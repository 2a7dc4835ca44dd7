"""Load a social graph through socialcompat as DeathStarBench's initialiser
(socialNetwork/scripts/init_social_graph.py) does: register users 0..N-1 as
`username_<i>` / `password_<i>`, follow every edge in both directions by username, then
0-20 posts per user (about 10) with its text: 256 alphanumerics, 0-5 mentions, 0-5
URLs of 64 characters, 0-5 media of 18 digits. Requests in batches of 200 concurrent, as
it sends them; every phase timed, every non-200 counted (with its first answers).

    python -m bench.dsb_graph [--url http://127.0.0.1:8080] [--dataset DIR] [--no-compose]

(`make socialgraph` runs it against `make up`.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
# ../shared/datasets beside the clone (DESIGN.md 11), or AGORA_DSB_DATASET.
DATASET = Path(
    os.environ.get("AGORA_DSB_DATASET")
    or next(
        (
            str(up / "shared" / "datasets" / "socfb-Reed98")
            for up in (REPO.parent, REPO.parent.parent)
            if (up / "shared" / "datasets" / "socfb-Reed98").is_dir()
        ),
        str(REPO.parent / "shared" / "datasets" / "socfb-Reed98"),
    )
)
BATCH = 200  # requests in flight, as the initialiser's TCPConnector(limit=200)
ALNUM = string.ascii_letters + string.digits


@dataclass
class Phase:
    name: str
    requests: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def read_graph(dataset: Path) -> tuple[int, list[tuple[int, int]]]:
    name = dataset.name
    nodes = int((dataset / f"{name}.nodes").read_text().split()[0])
    edges = [
        (int(a), int(b))
        for a, b in (
            line.split()[:2]
            for line in (dataset / f"{name}.edges").read_text().split("\n")
            if line.strip()
        )
    ]
    return nodes, edges


def compose_form(user: int, nodes: int, rng: random.Random) -> dict[str, str]:
    text = "".join(rng.choices(ALNUM, k=256))
    for _ in range(rng.randint(0, 5)):
        text += f" @username_{rng.randrange(nodes)}"
    for _ in range(rng.randint(0, 5)):
        text += " http://" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=64))
    media = [f'"{"".join(rng.choices(string.digits, k=18))}"' for _ in range(rng.randint(0, 5))]
    return {
        "username": f"username_{user}",
        "user_id": str(user),
        "text": text,
        "media_ids": "[" + ",".join(media) + "]",
        "media_types": "[" + ",".join(['"png"'] * len(media)) + "]",
        "post_type": "0",
    }


async def _phase(
    session: aiohttp.ClientSession, url: str, name: str, path: str, forms: list[dict[str, str]]
) -> Phase:
    phase = Phase(name, len(forms))
    started = time.perf_counter()

    async def send(form: dict[str, str]) -> None:
        try:
            async with session.post(url + path, data=form) as resp:
                answer = await resp.text()
                if resp.status != 200:
                    phase.errors[f"{resp.status} {answer.strip()[:80]}"] += 1
        except (aiohttp.ClientError, TimeoutError) as error:
            phase.errors[type(error).__name__] += 1

    for start in range(0, len(forms), BATCH):
        await asyncio.gather(*(send(form) for form in forms[start : start + BATCH]))
    phase.seconds = time.perf_counter() - started
    return phase


async def load(
    url: str, dataset: Path = DATASET, *, compose: bool = True, seed: int = 1
) -> list[Phase]:
    nodes, edges = read_graph(dataset)
    rng = random.Random(seed)
    registers = [
        {
            "first_name": f"first_name_{i}",
            "last_name": f"last_name_{i}",
            "username": f"username_{i}",
            "password": f"password_{i}",
            "user_id": str(i),
        }
        for i in range(nodes)
    ]
    follows = [
        {"user_name": f"username_{a}", "followee_name": f"username_{b}"}
        for x, y in edges
        for a, b in ((x, y), (y, x))
    ]
    posts = [compose_form(i, nodes, rng) for i in range(nodes) for _ in range(rng.randint(0, 20))]
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=BATCH), timeout=timeout
    ) as session:
        phases = [
            await _phase(session, url, "register", "/wrk2-api/user/register", registers),
            await _phase(session, url, "follow", "/wrk2-api/user/follow", follows),
        ]
        if compose:
            phases.append(await _phase(session, url, "compose", "/wrk2-api/post/compose", posts))
    return phases


def phases_table(phases: list[Phase]) -> str:
    lines = ["| phase | requests | seconds | req/s | errors |", "|---|---:|---:|---:|---:|"]
    for p in phases:
        lines.append(
            f"| {p.name} | {p.requests:,} | {p.seconds:.1f} | {p.rate:,.0f} | {p.error_count} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--no-compose", action="store_true")
    args = parser.parse_args(argv)
    phases = asyncio.run(load(args.url.rstrip("/"), args.dataset, compose=not args.no_compose))
    print(phases_table(phases))
    for phase in phases:
        for answer, count in phase.errors.most_common(5):
            print(f"{phase.name}: {count} x {answer}")
    return 1 if any(phase.error_count for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

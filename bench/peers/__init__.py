"""The peers of catalog in `make bench BENCH=peers`: GET /api/v1/products/{id} and the
list of 20 written plainly in bare aiohttp + asyncpg, Starlette + uvicorn + asyncpg and
FastAPI + asyncpg, each served the way its users serve it (gunicorn, with aiohttp's
uvloop worker or uvicorn's worker with httptools and uvloop), against catalog's own
database: the same rows, the same SQL, the same JSON (prices as decimal strings,
ISO-8601 timestamps with their offset, a 404 in the error shape for a missing id).

Their dependencies are the `bench` extra of pyproject.toml, never the services' runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..common import BenchEnv


def run(env: BenchEnv) -> str:
    """The benchmark (bench/peers/measure.py), imported only here: the peers' own
    servers import this package too and need none of it."""
    from .measure import run as measure

    return measure(env)

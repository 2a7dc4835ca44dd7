"""The kit's Redis client across a Redis restart."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.kit.redis_client import connect
from tests.conftest import free_port, redis_process


async def test_the_first_command_after_a_restart_succeeds():
    """Every pooled connection is stale after a restart; none of them fails a command."""
    port = free_port()
    client = connect(f"redis://127.0.0.1:{port}/0")
    try:
        with redis_process(port):
            assert [await client.incr("n") for _ in range(3)] == [1, 2, 3]
            # several connections in the pool, all of them to the server about to go
            await client.mget(*(f"k{i}" for i in range(3)))
        with redis_process(port):  # back, empty
            assert [await client.incr("n") for _ in range(3)] == [1, 2, 3]
    finally:
        await client.aclose()


async def test_redis_away_is_still_an_error():
    port = free_port()
    client = connect(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(RedisConnectionError):  # retried once, then the error: a 503
            await client.ping()
    finally:
        await client.aclose()

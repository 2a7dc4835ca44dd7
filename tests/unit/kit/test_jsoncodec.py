"""JSON with exact big integers, on its own and through the outbound client."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from services.kit.http_client import HttpClient, Policy, Upstream
from services.kit.jsoncodec import dumps, loads


def test_big_integers_round_trip_exactly():
    data = {"n": 2**200 + 1, "m": -(3**100), "small": 5, "f": 0.1, "d": Decimal("1.50")}
    raw = dumps(data)
    assert loads(raw) == {**data, "d": "1.50"}


def test_small_payloads_keep_orjson_output():
    assert dumps({"a": [1, 2.5, "x", None, True]}) == b'{"a":[1,2.5,"x",null,true]}'


def test_unserialisable_values_still_fail():
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_nan_is_not_json():
    with pytest.raises(ValueError):
        loads(b"[NaN]")


async def test_the_client_sends_and_reads_big_integers(aiohttp_server):
    async def double(request: web.Request) -> web.Response:
        number = loads(await request.read())["n"]
        return web.Response(body=dumps({"n": number * 2}), content_type="application/json")

    app = web.Application()
    app.router.add_post("/double", double)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        upstream = Upstream("test", "up", str(server.make_url("")), Policy())
        client = HttpClient(session, {"up": upstream})
        response = await client.post("up", "/double", json={"n": 2**100})
    assert response.json() == {"n": 2**101}

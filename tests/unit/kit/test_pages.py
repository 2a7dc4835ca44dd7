"""PAGE_SIZE: the size of a list's page when the client names none (an A/B test's
variants may differ in it: docs/canary.md)."""

from __future__ import annotations

from services.kit.config import KitSettings
from tests.unit.kit.sample_app import create_app


async def test_default_page_size_is_twenty(aiohttp_client):
    client = await aiohttp_client(create_app(KitSettings(service_name="sample")))
    assert (await (await client.get("/api/v1/sample/page")).json())["limit"] == 20


async def test_page_size_setting_is_the_default_and_limit_still_wins(aiohttp_client):
    client = await aiohttp_client(create_app(KitSettings(service_name="sample", page_size=50)))
    assert (await (await client.get("/api/v1/sample/page")).json())["limit"] == 50
    assert (await (await client.get("/api/v1/sample/page?limit=7")).json())["limit"] == 7
    assert (await client.get("/api/v1/sample/page?limit=500")).status == 400

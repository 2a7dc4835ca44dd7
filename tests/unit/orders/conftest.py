"""orders against real catalog and users servers (their own apps, on local ports), real
PostgreSQL and a real Redis."""

from __future__ import annotations

import pytest

from services.catalog.app import create_app as create_catalog
from services.orders.app import Settings
from services.orders.app import create_app as create_orders
from services.users.app import create_app as create_users
from tests.conftest import free_port
from tests.unit.conftest import settings_for, truncate_all
from tests.unit.users.conftest import users_settings

STREAM = "orders.events"


@pytest.fixture
async def dsns(databases: dict[str, str]) -> dict[str, str]:
    for service in ("catalog", "users", "orders"):
        await truncate_all(databases[service])
    return databases


@pytest.fixture
async def catalog(aiohttp_client, dsns):
    return await aiohttp_client(
        create_catalog(settings_for("catalog", database_url=dsns["catalog"]))
    )


@pytest.fixture
async def users(aiohttp_client, dsns, redis_url, auth_keys):
    return await aiohttp_client(create_users(users_settings(dsns["users"], redis_url, auth_keys)))


def url_of(test_client) -> str:
    return str(test_client.server.make_url(""))


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def orders_settings(dsns, catalog, users, redis_url):
    def make(**overrides) -> Settings:
        values = {
            "service_name": "orders",
            "database_url": dsns["orders"],
            "redis_url": redis_url,
            "catalog_url": url_of(catalog),
            "users_url": url_of(users),
            "events_stream": STREAM,
            "reconcile_interval": 600,  # tests settle explicitly (lifecycle.settle_once)
            "upstream_timeout": 2,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
async def client(aiohttp_client, orders_settings):
    return await aiohttp_client(create_orders(orders_settings()))


async def make_product(catalog, *, quantity=10, price="10.00", name="Thing") -> int:
    resp = await catalog.post(
        "/api/v1/products", json={"name": name, "price": price, "quantity": quantity}
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]


async def stock(catalog, product_id: int) -> int:
    return (await (await catalog.get(f"/api/v1/products/{product_id}")).json())["quantity"]


async def make_user(users, age=30) -> int:
    resp = await users.post("/api/v1/users", json={"name": "Ana", "age": age})
    assert resp.status == 201
    return (await resp.json())["id"]

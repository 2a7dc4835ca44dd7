"""catalog's own handlers twice in one server: inside the kit (catalog's routes as they
are) and as bare aiohttp routes under /bench/without-kit (no request id, deadline, error
shape, metrics or access line); and a no-op handler both ways. `bench/peers.py` measures
what the kit costs on a real endpoint and on one that does nothing, with everything else
(process, pool, SQL, JSON) the same."""

from __future__ import annotations

from aiohttp import web

from services.catalog import views
from services.catalog.app import create_app as create_catalog
from services.kit.config import KitSettings, load_settings
from services.kit.keys import INSTRUMENTATION

from .kit_app import product_like

Settings = KitSettings
BARE_PREFIX = "/bench/without-kit"
NOOP = "/bench/noop/{id}"


def create_app(settings: KitSettings | None = None) -> web.Application:
    app = create_catalog(settings or load_settings(Settings))
    app[INSTRUMENTATION].add(app, "GET", NOOP, product_like)
    app.router.add_get(f"{BARE_PREFIX}/api/v1/products/{{id}}", views.get_product)
    app.router.add_get(f"{BARE_PREFIX}{NOOP}", product_like)
    return app

"""The realtime service's own app keys."""

from __future__ import annotations

from aiohttp import web

HUB = web.AppKey("hub", "Hub")
PRESENCE = web.AppKey("presence", "Presence")

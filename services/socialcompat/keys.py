"""The typed keys socialcompat stores on its application."""

from __future__ import annotations

from aiohttp import web

AGORA = web.AppKey("agora", "Agora")

"""The typed keys users stores on its application."""

from __future__ import annotations

from aiohttp import web

PASSWORDS = web.AppKey("passwords", "Passwords")
LOGIN_LIMITER = web.AppKey("login_limiter", "AttemptLimiter")

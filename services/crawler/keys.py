"""The typed keys crawler-worker stores on its application."""

from __future__ import annotations

from aiohttp import web

CHECKER = web.AppKey("checker", "Checker")
TASK_STATES = web.AppKey("task_states", "TaskStates")
RESULTS = web.AppKey("results", "ResultWriter")

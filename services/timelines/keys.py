"""timelines' own application keys."""

from __future__ import annotations

from aiohttp import web

from .fanout import FanOut
from .reads import Reader

READER = web.AppKey("timeline_reader", Reader)
FAN_OUT = web.AppKey("timeline_fan_out", FanOut)

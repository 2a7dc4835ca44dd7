"""A small service built with the kit, for testing the kit itself (also under gunicorn:
`agora-serve tests.unit.kit.sample_app`)."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web
from pydantic import BaseModel, Field

from services.kit import app as kit
from services.kit.api import Api, Body, PageQuery, Query, json_response
from services.kit.config import KitSettings, load_settings
from services.kit.fields import Count, Name

api = Api("sample", title="Sample", description="Exercises the kit.")


class Echo(Body):
    text: Name
    count: Count


class EchoOut(BaseModel):
    text: str
    count: int


class Pause(Query):
    seconds: float = Field(0.5, ge=0, le=30)


@api.get("/api/v1/sample/hello", summary="Say hello")
async def hello(request: web.Request) -> web.Response:
    return json_response({"hello": "world", "pid": os.getpid()})


@api.post("/api/v1/sample/echo", summary="Echo", body=Echo, response=EchoOut, status=201)
async def echo(request: web.Request, body: Echo) -> web.Response:
    return json_response(body.model_dump(), status=201)


@api.get("/api/v1/sample/slow", summary="Answer after a pause", query=Pause)
async def slow(request: web.Request, query: Pause) -> web.Response:
    await asyncio.sleep(query.seconds)
    return json_response({"slept": query.seconds, "pid": os.getpid()})


@api.get(
    "/api/v1/sample/quick", summary="A route with its own short deadline", query=Pause, timeout=0.05
)
async def quick(request: web.Request, query: Pause) -> web.Response:
    await asyncio.sleep(query.seconds)
    return json_response({"slept": query.seconds})


@api.get("/api/v1/sample/page", summary="The page asked for", query=PageQuery)
async def page_asked(request: web.Request, query: PageQuery) -> web.Response:
    return json_response({"limit": query.limit, "offset": query.offset})


@api.get("/api/v1/sample/boom", summary="Fails")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


Settings = KitSettings


def create_app(settings: KitSettings | None = None) -> web.Application:
    return kit.create_app(settings or load_settings(Settings), api)

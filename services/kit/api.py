"""Routes declared once, with their schemas: request parsing, responses and OpenAPI.

A handler is registered with the pydantic models of its body, query and response.
The same declaration parses and validates the request (so a handler receives a valid
`body` / `query` or never runs) and generates the OpenAPI document, so the two can't
drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from .auth import REQUIRED, Auth, authenticate
from .caching import conditional
from .errors import ApiError, field_error, validation_error
from .faults import NO_FAULTS, Faults
from .instrument import DEFAULT, Instrumentation
from .jsoncodec import dumps
from .keys import SETTINGS, TOKEN_VERIFIER
from .websocket import SocketHandler, socket_handler

Handler = Callable[..., Awaitable[web.StreamResponse]]
ModelT = TypeVar("ModelT", bound=BaseModel)
ItemT = TypeVar("ItemT")

MAX_ID = 2**63 - 1  # PostgreSQL bigint
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
JSON_TYPES = ("application/json",)


def _integral_float(value: Any) -> Any:
    # JSON Schema's integer is a number without a fraction: 3.0 is the integer 3.
    return int(value) if isinstance(value, float) and value.is_integer() else value


_INTEGER_TEXT = re.compile(r"-?[0-9]+(\.0+)?")


def _integer_text(value: Any) -> Any:
    # What a client writes for an integer in a URL: digits, perhaps a sign or ".0";
    # not the " 5", "+5" or "1_0" that int() would read as well.
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            raise PydanticCustomError("int_parsing", "Input should be an integer, in digits")
        return int(value.split(".")[0])
    return value


def _wrap_integers(schema: Any, before: Callable[[Any], Any]) -> Any:
    """The core schema with `before` run ahead of every integer in it."""
    if isinstance(schema, list):
        return [_wrap_integers(item, before) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "int":
        return core_schema.no_info_before_validator_function(before, schema)
    return {key: _wrap_integers(value, before) for key, value in schema.items()}


class Body(BaseModel):
    """Base for request bodies: JSON types are not coerced, unknown fields are errors.
    Integers are JSON Schema's, which the document states: 3.0 is accepted as 3."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return _wrap_integers(handler(source), _integral_float)


class Query(BaseModel):
    """Base for query strings and path parameters: values arrive as text, so they are
    converted; an integer is written in digits. An unknown parameter is an error (a
    misspelt `limt=5` would otherwise be ignored without a word)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return _wrap_integers(handler(source), _integer_text)


class Patch(Body):
    """Base for PATCH bodies: the fields given change, at least one must be. Declare
    each field `T | MISSING = MISSING` (pydantic.MISSING): omitted, it is left alone;
    `T | MISSING | None` where null is a value the field may be set to."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _not_empty(self) -> Patch:
        if not self.model_fields_set:
            raise ValueError(f"give at least one of {', '.join(type(self).model_fields)}")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class PageQuery(Query):
    limit: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="page size; default PAGE_SIZE"
    )
    offset: int = Field(0, ge=0, le=MAX_ID, description="items to skip")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int


class ErrorDetail(BaseModel):
    field: str
    location: str
    message: str
    type: str


class ErrorBody(BaseModel):
    error: str = Field(examples=["Product 6 does not exist"])
    code: str = Field(examples=["not_found"])
    details: list[ErrorDetail] = []


# ---------------------------------------------------------------- responses


def json_response(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type="application/json"
    )


def created(data: object, location: str) -> web.Response:
    return json_response(data, status=201, headers={"Location": location})


def page(items: Sequence[object], total: int) -> web.Response:
    return json_response({"items": items, "total": total})


def no_content() -> web.Response:
    return web.Response(status=204)


# ---------------------------------------------------------------- requests


async def read_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The request body as `model`; 415, 413 or 400 (with field details) otherwise."""
    if request.headers.get("Content-Type") and request.content_type not in JSON_TYPES:
        raise ApiError(415, f"Content-Type must be application/json, not {request.content_type}")
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    if not raw.strip():
        raise ApiError(400, "Request body must be a JSON object", code="validation_error")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise ApiError(400, "Malformed JSON", code="malformed_json") from None
        raise validation_error(error) from None


def read_query(request: web.Request, model: type[ModelT]) -> ModelT:
    query = dict(request.query)
    if "limit" not in query and issubclass(model, PageQuery):
        # the service's PAGE_SIZE (an A/B test's variants may differ in it)
        query["limit"] = request.app[SETTINGS].page_size
    try:
        return model.model_validate(query)
    except ValidationError as error:
        raise validation_error(error, location="query") from None


def read_path(request: web.Request, model: type[ModelT]) -> ModelT:
    try:
        # A path model declares some of the route's parameters (an `id` is read apart).
        fields = model.model_fields
        return model.model_validate({k: v for k, v in request.match_info.items() if k in fields})
    except ValidationError as error:
        raise validation_error(error, location="path") from None


# A path parameter named id or *_id without a model of its own (Endpoint.path_params).
ID_PARAMETER = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive integer path parameter; anything else is a 400 naming it."""
    text = request.match_info[name]
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise ApiError(
            400,
            f"{name} must be a positive integer",
            code="validation_error",
            details=[
                field_error(name, f"must be an integer from 1 to {MAX_ID}", "int_parsing", "path")
            ],
        )
    return int(text)


# ---------------------------------------------------------------- route table

_PATH_PARAM = re.compile(r"{(\w+)(?::[^{}]+)?}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    timeout: float | None = DEFAULT  # None: no deadline (streams); DEFAULT: REQUEST_TIMEOUT
    headers: tuple[tuple[str, str], ...] = ()  # documented request headers: (name, description)
    auth: Auth = None  # REQUIRED or OPTIONAL: the handler gets `caller` (services.kit.auth)
    description: str = ""
    websocket: bool = False  # handler(request, Connection), called once the upgrade is done
    path_params: type[BaseModel] | None = None  # path parameters other than ids (a Query)
    # A route between Agora's own services (under /internal/, never routed by the
    # ingress): served, but left out of the public OpenAPI document.
    internal: bool = False
    # Parts of the OpenAPI operation stated by hand, over the generated ones (a body or an
    # answer that is not JSON: socialcompat's forms and text).
    document: Mapping[str, Any] | None = None
    # Cache-Control of a GET of a single resource; set, it also answers with an ETag and
    # honours If-None-Match (services.kit.caching)
    cache: str | None = None


@dataclass
class Api:
    """The HTTP API of one service: its endpoints and its OpenAPI document."""

    service: str
    title: str
    description: str = ""
    version: str = "1.0.0"
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def docs_prefix(self) -> str:
        return f"/api/v1/{self.service}"

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        errors: Sequence[int] = (),
        timeout: float | None = DEFAULT,
        headers: Sequence[tuple[str, str]] = (),
        path_params: type[BaseModel] | None = None,
        auth: Auth = None,
        internal: bool = False,
        document: Mapping[str, Any] | None = None,
        cache: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    body,
                    query,
                    response,
                    status,
                    tuple(errors),
                    timeout,
                    tuple(headers),
                    auth,
                    path_params=path_params,
                    internal=internal,
                    document=document,
                    cache=cache,
                )
            )
            return handler

        return register

    def websocket(
        self, path: str, *, summary: str, description: str = ""
    ) -> Callable[[SocketHandler], SocketHandler]:
        """A WebSocket route: GET with an upgrade, no deadline. The handler receives
        the open services.kit.websocket.Connection; `description` documents its
        messages in the OpenAPI document (which cannot describe them otherwise)."""

        def register(handler: SocketHandler) -> SocketHandler:
            self.endpoints.append(
                Endpoint(
                    "GET",
                    path,
                    handler,  # type: ignore[arg-type]
                    summary,
                    errors=(400, 403, 503),
                    timeout=None,
                    description=description,
                    websocket=True,
                )
            )
            return handler

        return register

    @property
    def has_websockets(self) -> bool:
        return any(endpoint.websocket for endpoint in self.endpoints)

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)

    def add_routes(
        self, app: web.Application, instrumentation: Instrumentation, faults: Faults = NO_FAULTS
    ) -> None:
        """Every endpoint, instrumented; HTTP ones behind `faults` when any are set."""
        for endpoint in self.endpoints:
            handler = _bind(endpoint)
            instrumentation.add(
                app,
                endpoint.method,
                endpoint.path,
                handler if endpoint.websocket else faults.wrap(handler),
                route=openapi_path(endpoint.path),
                timeout=endpoint.timeout,
            )


def _bind(endpoint: Endpoint) -> Handler:
    """The aiohttp handler: authenticates the caller (if the route says so), then parses
    path, query and body into the declared models, and answers conditional GETs when the
    endpoint declares its caching."""
    if endpoint.websocket:
        return socket_handler(openapi_path(endpoint.path), endpoint.handler)  # type: ignore[arg-type]
    handler, body_model, query_model = endpoint.handler, endpoint.body, endpoint.query
    if endpoint.cache is not None:
        handler = conditional(handler, endpoint.cache)
    path_model = endpoint.path_params
    auth, required = endpoint.auth, endpoint.auth == REQUIRED
    if body_model is None and query_model is None and path_model is None and auth is None:
        return handler

    async def parse_then_handle(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if auth is not None:
            verifier = request.app[TOKEN_VERIFIER]
            kwargs["caller"] = authenticate(request, verifier, required=required)
        if path_model is not None:
            kwargs["path_params"] = read_path(request, path_model)
        if query_model is not None:
            kwargs["query"] = read_query(request, query_model)
        if body_model is not None:
            kwargs["body"] = await read_body(request, body_model)
        return await handler(request, **kwargs)

    parse_then_handle.__name__ = handler.__name__
    return parse_then_handle


def path_parameters(path: str) -> list[str]:
    return _PATH_PARAM.findall(path)


def openapi_path(path: str) -> str:
    """aiohttp's `{id:\\d+}` is OpenAPI's `{id}`."""
    return _PATH_PARAM.sub(r"{\1}", path)

"""OpenAPI 3.1 from the declared endpoints, and Swagger UI served by the service itself.

Swagger UI 5 (it reads OpenAPI 3.1) comes from the swagger-ui-py package, whose static
files are served from the service's own routes: no CDN, nothing fetched at run time.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from .api import (
    ID_PARAMETER,
    Api,
    Endpoint,
    ErrorBody,
    openapi_path,
    path_parameters,
)
from .auth import OPTIONAL, SECURITY_SCHEME
from .caching import CACHE_CONTROL, ETAG, IF_NONE_MATCH, IF_NONE_MATCH_SCHEMA
from .errors import code_for
from .headers import HEADER_PARAMETER
from .instrument import REQUEST_ID_HEADER, Instrumentation

REF = "#/components/schemas/{model}"


def _swagger_ui_static() -> Path:
    # Found without importing swagger_ui, whose import pulls in jinja2 and PyYAML for
    # the framework integrations we do not use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


SWAGGER_ASSETS = _swagger_ui_static()
# Every answer carries the request id; a created resource its address.
RESPONSE_HEADERS = {
    str(REQUEST_ID_HEADER): {  # an istr in the kit; JSON keys must be plain str
        "description": "the request's id: the caller's, or one made for it",
        "schema": {"type": "string"},
        "required": True,
    }
}
LOCATION_HEADER = {
    "Location": {
        "description": "the created resource",
        "schema": {"type": "string"},
        "required": True,
    }
}
REDIRECTS = {301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect"}
REDIRECT_LOCATION = {
    "Location": {"description": "where to go", "schema": {"type": "string"}, "required": True}
}


class DocumentSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, made to say exactly what the models accept."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        # pydantic states a key pattern as patternProperties, which leaves keys that do
        # not match free to hold anything; the model refuses those keys.
        json_schema = super().dict_schema(schema)
        patterns = json_schema.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            json_schema["propertyNames"] = {
                **json_schema.get("propertyNames", {}),
                "pattern": pattern,
            }
            json_schema["additionalProperties"] = values
        return json_schema


def build_openapi(api: Api) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], str]] = [(ErrorBody, "serialization")]
    public = [endpoint for endpoint in api.endpoints if not endpoint.internal]
    for endpoint in public:
        if endpoint.body is not None:
            models.append((endpoint.body, "validation"))
        if isinstance(endpoint.response, type) and issubclass(endpoint.response, BaseModel):
            models.append((endpoint.response, "serialization"))
    refs, top = models_json_schema(
        list(dict.fromkeys(models)), ref_template=REF, schema_generator=DocumentSchema
    )
    schemas = top.get("$defs", {})

    def schema_of(model: Any, mode: str) -> dict[str, Any]:
        if model is None:
            return {}
        if (model, mode) in refs:
            return refs[(model, mode)]
        schema = TypeAdapter(model).json_schema(
            mode=mode, ref_template=REF, schema_generator=DocumentSchema
        )
        schemas.update(schema.pop("$defs", {}))
        return schema

    error_schema = schema_of(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in public:
        operation = _operation(api, endpoint, schema_of, error_schema)
        paths.setdefault(openapi_path(endpoint.path), {})[endpoint.method.lower()] = operation

    components: dict[str, Any] = {"schemas": schemas}
    if any(endpoint.auth for endpoint in public):
        components["securitySchemes"] = BEARER_SCHEME
    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version, "description": api.description},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": components,
    }


# What a WebSocket handshake sends (RFC 6455); without it the route answers 400, so the
# document says so.
WEBSOCKET_HANDSHAKE = [
    {"name": name, "in": "header", "required": True, "schema": schema}
    for name, schema in (
        ("Upgrade", {"type": "string", "enum": ["websocket"]}),
        ("Connection", {"type": "string", "enum": ["Upgrade"]}),
        ("Sec-WebSocket-Key", {"type": "string", "pattern": "^[A-Za-z0-9+/]{22}==$"}),
        ("Sec-WebSocket-Version", {"type": "string", "enum": ["13"]}),
    )
]


def _parameters_of(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, schema_generator=DocumentSchema)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "description": prop.get("description", ""),
            "schema": {k: v for k, v in prop.items() if k not in ("description", "title")},
        }
        for name, prop in schema.get("properties", {}).items()
    ]


BEARER_SCHEME = {
    SECURITY_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A token from POST /api/v1/auth/login (users), EdDSA-signed",
    }
}
CHALLENGE = {
    "WWW-Authenticate": {
        "description": 'Bearer realm="agora", with error="invalid_token" for a bad token',
        "schema": {"type": "string"},
    }
}


def _operation(api: Api, endpoint: Endpoint, schema_of: Any, error_schema: Any) -> dict[str, Any]:
    path_model = endpoint.path_params
    modelled = _parameters_of(path_model, "path") if path_model is not None else []
    by_name = {parameter["name"]: parameter for parameter in modelled}
    parameters: list[dict[str, Any]] = [
        by_name.get(name)
        or {
            "name": name,
            "in": "path",
            "required": True,
            "schema": ID_PARAMETER if name.endswith("id") else {"type": "string"},
        }
        for name in path_parameters(endpoint.path)
    ]
    if endpoint.query is not None:
        parameters += _parameters_of(endpoint.query, "query")
    for name, description in endpoint.headers:
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": HEADER_PARAMETER,
            }
        )
    if endpoint.cache is not None:
        parameters.append(
            {
                "name": str(IF_NONE_MATCH),
                "in": "header",
                "required": False,
                "description": "ETags of a copy the client holds; the current one gets 304",
                "schema": IF_NONE_MATCH_SCHEMA,
            }
        )
    if endpoint.websocket:
        parameters += WEBSOCKET_HANDSHAKE
    responses: dict[str, Any] = {}
    if endpoint.websocket:
        responses["101"] = {
            "description": "Switching Protocols: the WebSocket is open (a request without"
            " the upgrade headers is a 400)"
        }
    elif endpoint.status == 204:
        responses["204"] = {"description": "No content", "headers": RESPONSE_HEADERS}
    elif endpoint.status in REDIRECTS:
        responses[str(endpoint.status)] = {
            "description": REDIRECTS[endpoint.status],
            "headers": RESPONSE_HEADERS | REDIRECT_LOCATION,
        }
    else:
        success: dict[str, Any] = {
            "description": "OK" if endpoint.status == 200 else "Created",
            "headers": RESPONSE_HEADERS | (LOCATION_HEADER if endpoint.status == 201 else {}),
        }
        if endpoint.response is not None:
            success["content"] = {
                "application/json": {"schema": schema_of(endpoint.response, "serialization")}
            }
        responses[str(endpoint.status)] = success
    if endpoint.cache is not None:
        validators = _validator_headers(endpoint.cache)
        success["headers"] = success["headers"] | validators
        responses["304"] = {
            "description": "Not modified: If-None-Match names the current ETag",
            "headers": RESPONSE_HEADERS | validators,
        }
    error_statuses = set(endpoint.errors)
    if endpoint.body is not None:
        error_statuses |= {400, 413, 415}
    # a malformed If-None-Match of a cached GET is a 400 too, parameters or not (/users/me)
    if endpoint.query is not None or path_parameters(endpoint.path) or endpoint.cache:
        error_statuses.add(400)
    if endpoint.auth:
        error_statuses.add(401)
    for status in sorted(error_statuses):
        responses[str(status)] = {
            "description": code_for(status),
            "headers": RESPONSE_HEADERS,
            "content": {"application/json": {"schema": error_schema}},
        }
        if status == 401:
            responses["401"]["headers"] = {**RESPONSE_HEADERS, **CHALLENGE}
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [api.service],
        "parameters": parameters,
        "responses": responses,
    }
    if endpoint.auth:
        bearer = {SECURITY_SCHEME: []}
        # OPTIONAL: anonymous ({}) or with a token; a token that is sent must be valid.
        operation["security"] = [{}, bearer] if endpoint.auth == OPTIONAL else [bearer]
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of(endpoint.body, "validation")}},
        }
    if endpoint.document:
        operation.update(endpoint.document)
    return operation


def _validator_headers(cache_control: str) -> dict[str, Any]:
    return {
        str(ETAG): {
            "description": "strong validator of this representation",
            "schema": {"type": "string"},
        },
        str(CACHE_CONTROL): {
            "description": f"what a client may cache: `{cache_control}`",
            "schema": {"type": "string", "enum": [cache_control]},
        },
    }


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-ui-standalone-preset.js"></script>
<script src="{prefix}/docs/init.js"></script>
</body></html>
"""

_DOCS_INIT = """window.ui = SwaggerUIBundle({{
  url: "{prefix}/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
}});
"""


SWAGGER_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui-standalone-preset.js": "application/javascript",
    "favicon-32x32.png": "image/png",
}


def add_docs_routes(app: web.Application, api: Api, instrumentation: Instrumentation) -> None:
    """GET <prefix>/openapi.json, <prefix>/docs (Swagger UI) and its assets, no CDN."""
    prefix = api.docs_prefix
    assets = f"{prefix}/docs/assets"
    document = orjson.dumps(build_openapi(api))
    page = _DOCS_PAGE.format(title=html.escape(api.title), assets=assets, prefix=prefix)
    init = _DOCS_INIT.format(prefix=prefix)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def docs_init(request: web.Request) -> web.Response:
        return web.Response(text=init, content_type="application/javascript")

    async def docs_asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in SWAGGER_FILES:
            raise web.HTTPNotFound()
        return web.FileResponse(
            SWAGGER_ASSETS / name,
            headers={"Content-Type": SWAGGER_FILES[name], "Cache-Control": "max-age=86400"},
        )

    instrumentation.add(app, "GET", f"{prefix}/openapi.json", openapi_json)
    instrumentation.add(app, "GET", f"{prefix}/docs", docs)
    instrumentation.add(app, "GET", f"{prefix}/docs/init.js", docs_init)
    instrumentation.add(app, "GET", f"{assets}/{{name}}", docs_asset)

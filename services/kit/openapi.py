"""OpenAPI 3.1 from the declared endpoints, and Swagger UI served by the service itself."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson
import swagger_ui_bundle
from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from .api import UUID_PATTERN, Api, Endpoint, ErrorBody, openapi_path, path_parameters
from .errors import code_for
from .instrument import Instrumentation

REF = "#/components/schemas/{model}"
SWAGGER_ASSETS = Path(swagger_ui_bundle.swagger_ui_path)


def build_openapi(api: Api) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], str]] = [(ErrorBody, "serialization")]
    for endpoint in api.endpoints:
        if endpoint.body is not None:
            models.append((endpoint.body, "validation"))
        if isinstance(endpoint.response, type) and issubclass(endpoint.response, BaseModel):
            models.append((endpoint.response, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas = top.get("$defs", {})

    def schema_of(model: Any, mode: str) -> dict[str, Any]:
        if model is None:
            return {}
        if (model, mode) in refs:
            return refs[(model, mode)]
        schema = TypeAdapter(model).json_schema(mode=mode, ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        return schema

    error_schema = schema_of(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in api.endpoints:
        operation = _operation(api, endpoint, schema_of, error_schema)
        paths.setdefault(openapi_path(endpoint.path), {})[endpoint.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version, "description": api.description},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _path_schema(path: str, name: str) -> dict[str, Any]:
    if f"{{{name}:{UUID_PATTERN}}}" in path:
        return {"type": "string", "format": "uuid"}
    if name.endswith("id"):
        return {"type": "integer", "minimum": 1}
    return {"type": "string"}


def _operation(api: Api, endpoint: Endpoint, schema_of: Any, error_schema: Any) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(endpoint.path, name)}
        for name in path_parameters(endpoint.path)
    ]
    if endpoint.query is not None:
        query_schema = endpoint.query.model_json_schema(ref_template=REF)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": prop.get("description", ""),
                    "schema": {k: v for k, v in prop.items() if k != "description"},
                }
            )
    for name, description in endpoint.headers:
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {"type": "string", "maxLength": 200},
            }
        )
    responses: dict[str, Any] = {}
    if endpoint.websocket:
        responses["101"] = {
            "description": "Switching Protocols: the WebSocket is open (a request without"
            " the upgrade headers is a 400)"
        }
    elif endpoint.status == 204:
        responses["204"] = {"description": "No content"}
    else:
        success: dict[str, Any] = {"description": "OK" if endpoint.status == 200 else "Created"}
        if endpoint.response is not None:
            success["content"] = {
                "application/json": {"schema": schema_of(endpoint.response, "serialization")}
            }
        responses[str(endpoint.status)] = success
    error_statuses = set(endpoint.errors)
    if endpoint.body is not None:
        error_statuses |= {400, 413, 415}
    if endpoint.query is not None or path_parameters(endpoint.path):
        error_statuses.add(400)
    for status in sorted(error_statuses):
        responses[str(status)] = {
            "description": code_for(status),
            "content": {"application/json": {"schema": error_schema}},
        }
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [api.service],
        "parameters": parameters,
        "responses": responses,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of(endpoint.body, "validation")}},
        }
    return operation


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
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

"""Every service's Swagger UI, opened in Chromium: it renders the service's OpenAPI 3.1
document (every operation listed), loads nothing from outside, and "Try it out" on a
GET answers 200 through the same address the page came from."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from devstack.topology import docs_path, openapi_path, workloads
from tests.conftest import api_base

SERVICES = workloads()
# Swagger UI is 1.5 MB of JavaScript to parse: more than the usual 15 s on a busy
# 2-core machine.
PATIENCE_MS = 60_000
BY_NAME = {workload.name: workload for workload in SERVICES}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def required_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p.get("required")]


def a_value(parameter: dict[str, Any]) -> str | None:
    """What a user would type: the documented example, an integer's minimum, or a word
    where any word fits; None when the document gives nothing to go by."""
    schema = parameter.get("schema", {})
    # an optional parameter's schema is anyOf [its type, null]
    schema = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
    for example in (parameter.get("example"), schema.get("example"), *schema.get("examples", [])):
        if example is not None:
            return str(example)
    if schema.get("type") == "integer":
        return str(schema.get("minimum", 1))
    pattern = schema.get("pattern")
    if schema.get("type") == "string" and (pattern is None or re.search(pattern, "agora")):
        return "agora"
    return None


def fillings(operation: dict[str, Any]) -> list[dict[str, str]]:
    """Ways to fill the operation's parameters: the required ones alone, then with each
    optional one that has a value (a lookup that needs one of its filters)."""
    required = {p["name"]: a_value(p) for p in required_parameters(operation)}
    if None in required.values():
        return []
    optional = [p for p in operation.get("parameters", []) if not p.get("required")]
    extra = [{p["name"]: a_value(p)} for p in optional if p["in"] == "query" and a_value(p)]
    return [required, *({**required, **one} for one in extra)]


def a_get_to_try(base: str, document: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """A GET and its parameters that answer 200 right now (asked with httpx first), the
    simplest first; None when the service has no GET (calc is all POST). WebSocket
    routes (their answer is a 101) are not tried: a browser's fetch cannot upgrade."""
    gets = [
        (path, op)
        for method, path, op in operations(document)
        if method == "GET" and "101" not in op["responses"] and "200" in op["responses"]
    ]
    if not gets:
        return None
    for path, operation in sorted(gets, key=lambda get: len(required_parameters(get[1]))):
        where = {p["name"]: p["in"] for p in operation.get("parameters", [])}
        for values in fillings(operation):
            url = path.format(**{k: v for k, v in values.items() if where[k] == "path"})
            query = {k: v for k, v in values.items() if where[k] == "query"}
            if httpx.get(base + url, params=query, timeout=30).status_code == 200:
                return path, values
    raise AssertionError(f"no GET of the document answers 200 with values it suggests: {gets}")


@pytest.mark.parametrize("service", list(BY_NAME))
def test_docs_render_every_operation_and_try_it_out_works(page: Page, agora_url, service):
    base = api_base(BY_NAME[service], SERVICES, agora_url)
    if base is None:
        pytest.skip(f"{service} has no ingress route; its Service is reachable on devstack only")
    document = httpx.get(base + openapi_path(service), timeout=10).json()
    outside: list[str] = []
    errors: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith((base, "data:")):
            outside.append(request.url)

    page.set_default_timeout(PATIENCE_MS)
    page.on("request", note)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base + docs_path(service))

    listed = page.locator(".opblock")
    expect(listed).to_have_count(len(operations(document)))
    expect(page.locator(".info .title")).to_contain_text(document["info"]["title"])
    for method, path, _ in operations(document):
        block = page.locator(f".opblock-{method.lower()}").filter(
            has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
        )
        expect(block).to_have_count(1)
    assert not page.get_by_text("Unable to render this definition").count()

    chosen = a_get_to_try(base, document)
    if chosen is not None:
        path, values = chosen
        block = page.locator(".opblock-get").filter(
            has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
        )
        block.locator(".opblock-summary").click()
        block.get_by_role("button", name="Try it out").click()
        for name, value in values.items():
            block.locator(f'tr[data-param-name="{name}"] input').fill(value)
        with page.expect_response(lambda r: r.request.method == "GET" and path_of(r.url, base)):
            block.get_by_role("button", name="Execute").click()
        status = block.locator(".live-responses-table .response-col_status:not(.col_header)")
        expect(status).to_have_text("200")

    assert not outside, f"the page loaded from outside the service: {outside}"
    assert not errors, f"the page raised: {errors}"


def path_of(url: str, base: str) -> bool:
    """An answer to one of the service's own operations (not the page or its assets)."""
    return url.startswith(base) and "/docs" not in url and "openapi.json" not in url

"""Every service's Swagger UI, opened in Chromium: it renders the service's OpenAPI 3.1
document (every operation listed), loads nothing from outside, and "Try it out" on a
GET answers through the same address the page came from, as its document says."""

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


def a_get_to_try(document: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A GET that needs no parameter, else one whose parameters are all integers (filled
    with their minimum); None when the service has no such GET (calc is all POST).
    WebSocket routes (their answer is a 101) are not tried: a browser's fetch cannot
    upgrade."""
    gets = [
        (path, op)
        for method, path, op in operations(document)
        if method == "GET" and "101" not in op["responses"]
    ]
    simple = [(path, op) for path, op in gets if not required_parameters(op)]
    integers = [
        (path, op)
        for path, op in gets
        if all(p["schema"].get("type") == "integer" for p in required_parameters(op))
    ]
    return (simple or integers or [None])[0]


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

    chosen = a_get_to_try(document)
    if chosen is not None:
        path, operation = chosen
        block = page.locator(".opblock-get").filter(
            has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
        )
        block.locator(".opblock-summary").click()
        block.get_by_role("button", name="Try it out").click()
        for parameter in required_parameters(operation):
            field = block.locator(f'tr[data-param-name="{parameter["name"]}"] input')
            field.fill(str(parameter["schema"].get("minimum", 1)))
        with page.expect_response(lambda r: r.request.method == "GET" and path_of(r.url, base)):
            block.get_by_role("button", name="Execute").click()
        # The answer came back through the page's address; it is one the document lists
        # and not a server error (an empty database may rightly answer 404, a GET with
        # only optional filters 422 when the service needs one of them).
        documented = sorted(code for code in operation["responses"] if code < "500")
        status = block.locator(".live-responses-table .response-col_status:not(.col_header)")
        expect(status).to_have_text(re.compile(f"^({'|'.join(documented)})$"))

    assert not outside, f"the page loaded from outside the service: {outside}"
    assert not errors, f"the page raised: {errors}"


def path_of(url: str, base: str) -> bool:
    """An answer to one of the service's own operations (not the page or its assets)."""
    return url.startswith(base) and "/docs" not in url and "openapi.json" not in url

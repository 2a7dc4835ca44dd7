"""The OpenAPI document says exactly what the request models accept.

Each value below is validated twice: by the model, and against the JSON schema the
document states for it (with jsonschema_rs, the validator schemathesis uses). The two
must agree, value by value, at the boundaries of every shared field type.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import jsonschema_rs
import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from pydantic import MISSING, BaseModel, ValidationError

from services.kit.api import (
    ID_PARAMETER,
    MAX_ID,
    Api,
    Body,
    PageQuery,
    Patch,
    Query,
)
from services.kit.errors import ApiError
from services.kit.fields import (
    Count,
    Id,
    IdList,
    Money,
    Name,
    NonNegativeNumber,
    Number,
    digits_up_to,
)
from services.kit.headers import HEADER_PARAMETER, HEADER_PATTERN, MAX_HEADER_LENGTH, header_value
from services.kit.openapi import build_openapi


def accepted(model: type[BaseModel], document: dict[str, Any], value: Any) -> tuple[bool, bool]:
    """(the model accepts {"value": value}, the document's schema allows it)."""
    body = json.dumps({"value": value}).encode()  # orjson stops at 64-bit integers
    try:
        model.model_validate_json(body)
        by_model = True
    except ValidationError:
        by_model = False
    schema = document["components"]["schemas"][model.__name__]
    resolver = {"components": document["components"], **schema}
    by_document = jsonschema_rs.validator_for(resolver).is_valid(json.loads(body))
    return by_model, by_document


def document_of(model: type[Body]) -> dict[str, Any]:
    api = Api("sample", title="Sample")

    @api.post("/x", summary="x", body=model)
    async def handler(request, body):  # pragma: no cover - never called
        raise AssertionError

    return build_openapi(api)


def field_model(annotation: Any) -> type[Body]:
    return type("Sample", (Body,), {"__annotations__": {"value": annotation}})


CASES = {
    "Name": (
        Name,
        ["a", " a ", "Ćevapčići", "a b", "🐈", "x" * 200, "\u00a0x\u3000", "a\u0085b"],
        [
            "",
            " ",
            "\u3000\u00a0",
            "a\x00b",
            "a\nb",
            "\t",
            "a\x7f",
            "x" * 201,
            " " + "x" * 200,
            5,
            None,
            True,
        ],
    ),
    "Money": (
        Money,
        [
            0,
            10,
            10.5,
            19.99,
            0.01,
            "0",
            "10",
            "10.5",
            "19.99",
            "9999999999.99",
            9999999999.99,
            9999999999,
            1e3,
            0.1 + 0.6,
        ],
        [
            -1,
            -0.01,
            10.555,
            0.001,
            0.1 + 0.7,
            "10.555",
            "1e2",
            " 10",
            "10.",
            ".5",
            "+1",
            "abc",
            "",
            10000000000,
            "10000000000",
            1e30,
            True,
            None,
            [],
            "\u0661",
        ],
    ),
    "Id": (Id, [1, 2.0, MAX_ID], [0, -1, MAX_ID + 1, 1.5, "1", True, None]),
    "Count": (Count, [0, 816, 816.0, 2**31 - 1], [-1, 2**31, 0.5, "0", False]),
    "NonNegativeNumber": (
        NonNegativeNumber,
        [0, 0.0, -0.0, 1.5, 10**30, 1e300],
        [-1, -1e-300, "1", True, None],
    ),
    "Number": (Number, [0, -1.5, 10**30], ["1", True, None, []]),
}


@pytest.mark.parametrize(
    ("annotation", "value", "valid"),
    [
        pytest.param(annotation, value, valid, id=f"{name}-{value!r}"[:60])
        for name, (annotation, good, bad) in CASES.items()
        for valid, values in ((True, good), (False, bad))
        for value in values
    ],
)
def test_model_and_document_agree(annotation, value, valid):
    model = field_model(annotation)
    assert accepted(model, document_of(model), value) == (valid, valid)


def test_money_is_exact_and_normalised():
    model = field_model(Money)
    assert model.model_validate_json(b'{"value": 0.1}').value == Decimal("0.10")
    assert str(model.model_validate_json(b'{"value": -0.0}').value) == "0.00"
    assert model.model_validate_json(b'{"value": "7"}').value == Decimal("7.00")


def test_names_are_stored_without_the_blanks_around_them():
    model = field_model(Name)
    assert model.model_validate_json('{"value": "\u00a0 Acme \u3000"}'.encode()).value == "Acme"


class Sample(Patch):
    name: Name | MISSING = MISSING
    brand_id: Id | MISSING | None = MISSING


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"name": "x"}, True),
        ({"brand_id": None}, True),
        ({"brand_id": 3.0}, True),
        ({}, False),
        ({"name": None}, False),
        ({"name": "x", "other": 1}, False),
    ],
)
def test_a_patch_states_that_it_needs_a_field_and_which_may_be_null(body, valid):
    document = document_of(Sample)
    schema = {"components": document["components"], **document["components"]["schemas"]["Sample"]}
    assert jsonschema_rs.validator_for(schema).is_valid(body) is valid
    try:
        Sample.model_validate_json(orjson.dumps(body))
        by_model = True
    except ValidationError:
        by_model = False
    assert by_model is valid


def test_a_patch_tells_what_was_given():
    patch = Sample.model_validate_json(b'{"brand_id": null}')
    assert patch.changes() == {"brand_id": None}


@pytest.mark.parametrize(
    ("text", "valid"),
    [("5", True), ("0", True), ("-3", True), ("7.0", True), ("1.5", False), (" 5", False),
     ("+5", False), ("1_0", False), ("\uff15", False), ("", False), ("5e0", False)],
)  # fmt: skip
def test_integers_in_a_query_are_written_in_digits(text, valid):
    class Numbers(Query):
        value: int

    try:
        parsed = Numbers.model_validate({"value": text}).value
    except ValidationError:
        parsed = None
    assert (parsed is not None) is valid
    if valid:
        assert parsed == int(text.split(".")[0])


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("3,1,3,2", (3, 1, 2)), (str(MAX_ID), (MAX_ID,)),
     (f"{MAX_ID + 1},7", (7,)), ("9" * 19, ()), ("0", None), ("1,", None), ("9" * 20, None)],
)  # fmt: skip
def test_an_id_list_accepts_what_its_pattern_allows(text, parsed):
    """Any list the documented pattern allows is accepted; an id above MAX_ID names no row
    and is left out like any missing id."""

    class Lookup(Query):
        ids: IdList

    schema = Lookup.model_json_schema()["properties"]["ids"]
    assert jsonschema_rs.validator_for(schema).is_valid(text) is (parsed is not None)
    try:
        assert Lookup.model_validate({"ids": text}).ids == parsed
    except ValidationError:
        assert parsed is None


async def test_parameters_state_their_rules():
    class Where(Query):
        code: str

    api = Api("sample", title="Sample")

    @api.get(
        "/x/{id}/{code}",
        summary="x",
        query=PageQuery,
        path_params=Where,
        headers=[("Idempotency-Key", "a key")],
    )
    async def handler(request, query, path_params):  # pragma: no cover - never called
        raise AssertionError

    operation = build_openapi(api)["paths"]["/x/{id}/{code}"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert (
        parameters["id"]["schema"]
        == ID_PARAMETER
        == {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ID,
        }
    )
    assert parameters["code"]["schema"] == {"type": "string"}
    assert parameters["code"]["required"] is True
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert parameters["Idempotency-Key"]["schema"] == {
        "type": "string",
        "maxLength": MAX_HEADER_LENGTH,
        "pattern": HEADER_PATTERN,
    }
    assert operation["responses"]["200"]["headers"]["X-Request-ID"]["required"] is True


@pytest.mark.parametrize(
    ("value", "valid"),
    [("7f3c", True), ("a b", True), ("~" * MAX_HEADER_LENGTH, True), ("", False),
     ("x" * (MAX_HEADER_LENGTH + 1), False), (" a", False), ("a ", False), ("é", False)],
)  # fmt: skip
def test_a_documented_header_is_checked_as_stated(value, valid):
    request = make_mocked_request("POST", "/", headers={"Idempotency-Key": value})
    try:
        by_kit = header_value(request, "Idempotency-Key") == value
    except ApiError as error:
        assert error.status == 400 and error.details[0]["location"] == "header"
        by_kit = False
    assert by_kit is valid
    assert jsonschema_rs.validator_for(HEADER_PARAMETER).is_valid(value) is valid


@pytest.mark.parametrize("limit", [0, 9, 10, 99, 100, 1000, 65535, MAX_ID])
def test_digits_up_to_matches_exactly_the_integers_to_the_limit(limit):
    matches = re.compile(f"^{digits_up_to(limit)}$").match
    near = {0, 1, 9, 10, 99, 100, limit - 1, limit, limit + 1, limit * 10, 10 ** len(str(limit))}
    for number in sorted(n for n in near if n >= 0):
        assert bool(matches(str(number))) is (number <= limit), number
    assert not any(matches(text) for text in ("", "01", "-1", " 1", "1 ", "+1"))

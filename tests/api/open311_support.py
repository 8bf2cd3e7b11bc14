"""Shared by the Open311 tests: the published JSON Schemas (read from ../shared/open311 beside
the checkout, or WANGGE_OPEN311_SCHEMAS; never copied here), XML parsing, keys, points."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy import text

from tests.factories import point_in_grid

ROOT = Path(__file__).resolve().parents[2]


def schema_dir() -> Path | None:
    env = os.environ.get("WANGGE_OPEN311_SCHEMAS")
    for d in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "open311"]:
        if (d / "request.json").is_file():
            return d
    return None


def validator(name: str) -> Any:
    """A Draft 4 validator for one of the published schemas (with its $refs to siblings)."""
    d = schema_dir()
    if d is None:
        pytest.skip(
            "Open311 JSON Schemas not found: put open311/schema-validation's georeport-v2 files "
            "in ../shared/open311 beside the checkout or set WANGGE_OPEN311_SCHEMAS"
        )
    from jsonschema import Draft4Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = [
        (p.name, Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in d.glob("*.json")
        if p.name != "swagger.json"
    ]
    registry = Registry().with_resources(resources)
    return Draft4Validator(
        json.loads((d / name).read_text()), registry=registry, format_checker=FormatChecker()
    )


def swagger_validator(definition: str) -> Any:
    """An array of one of swagger.json's definitions (the answers the schema files do not
    cover: RequestResponse of a POST, TokenResponse)."""
    d = schema_dir()
    if d is None:
        validator("request.json")  # skips with the message
    assert d is not None
    from jsonschema import Draft4Validator, FormatChecker

    swagger = json.loads((d / "swagger.json").read_text())
    item = dict(swagger["definitions"][definition])
    for prop in item.get("properties", {}).values():
        prop.pop("format", None)  # "uid" is no JSON Schema format
    return Draft4Validator({"type": "array", "items": item}, format_checker=FormatChecker())


def check_json(resp: httpx.Response, schema: str, status: int = 200) -> Any:
    """Validate against a schema file (`request.json`…) or a swagger definition (`#Name`)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    v = swagger_validator(schema[1:]) if schema.startswith("#") else validator(schema)
    errors = sorted(v.iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    return body


def xml_of(resp: httpx.Response, root: str, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/xml"), resp.headers
    tree = SafeET.fromstring(resp.content)
    assert tree.tag == root, tree.tag
    return tree


REQUEST_ELEMENTS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]


def check_request_xml(el: Any) -> dict[str, str | None]:
    """A `<request>` element: the spec's children, in the spec's order, each once."""
    assert el.tag == "request"
    tags = [c.tag for c in el if c.tag != "extended_attributes"]
    assert tags == REQUEST_ELEMENTS, tags
    return {c.tag: c.text for c in el}


def check_error(resp: httpx.Response, status: int) -> str:
    """The spec's error answer: [{code, description}] (JSON) or <errors><error> (XML)."""
    assert resp.status_code == status, resp.text
    if resp.headers["content-type"].startswith("text/xml"):
        tree = SafeET.fromstring(resp.content)
        assert tree.tag == "errors"
        [err] = list(tree)
        assert err.tag == "error" and [c.tag for c in err] == ["code", "description"]
        assert err.find("code").text == str(status)
        return str(err.find("description").text)
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1, body
    assert set(body[0]) == {"code", "description"} and body[0]["code"] == status, body
    assert body[0]["description"]
    return str(body[0]["description"])


point_in = point_in_grid  # (lon, lat) inside a grid: the factory, under the name these tests use


async def cgj_category(conn: Any) -> str:
    """A category led by 城管局 alone (as the loop tests use)."""
    return (
        await conn.execute(
            text(
                "SELECT c.code FROM categories c JOIN category_classes k ON k.code = c.class_code "
                "WHERE c.lead_department = 'CGJ' AND c.co_departments = '{}' "
                "AND k.code NOT IN ('MD', 'ZA') ORDER BY c.code LIMIT 1"
            )
        )
    ).scalar_one()


async def new_key(
    anon: httpx.AsyncClient,
    as_user: Any,
    channel: str = "hotline",
    area_ids: list[int] | None = None,
    integrator: str = "12345 市民热线",
) -> dict[str, Any]:
    r = await anon.post(
        "/api/v1/open311/keys",
        headers=as_user("admin"),
        json={"integrator": integrator, "channel": channel, "area_ids": area_ids or []},
    )
    assert r.status_code == 201, r.text
    return r.json()

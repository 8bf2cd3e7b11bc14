"""Bug 13 of issue 16: a control character stored through the JSON API made Open311's
`requests.xml` not well-formed. The input refuses control characters (but tab, LF, CR) and bidi
overrides in every text of every request body; the XML writer drops what XML 1.0 cannot carry."""

from __future__ import annotations

import json

import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy import text

from tests.api.open311_support import cgj_category, check_error, new_key, point_in, xml_of
from tests.api.test_loop import GRID, _report

V2 = "/open311/v2"


async def _post_case(anon, as_user, conn, lang: str = "zh", **fields: str):
    lon, lat = await point_in(conn, GRID)
    body = {
        "category": await cgj_category(conn),
        "title": "井盖缺失",
        "description": "立新路井盖缺失",
        "location": {"lon": lon, "lat": lat},
        **fields,
    }
    headers = {**as_user("worker"), "Accept-Language": lang, "Content-Type": "application/json"}
    # json.dumps escapes non-ASCII, so a lone surrogate travels as the JSON escape \ud800
    return await anon.post("/api/v1/cases", headers=headers, content=json.dumps(body))


@pytest.mark.parametrize(
    ("field", "value", "char"),
    [
        ("description", "井盖\x01缺失", "0001"),
        ("description", "井盖\x1b[31m缺失", "001B"),
        ("description", "井\x7f盖", "007F"),
        ("description", "井\x85盖", "0085"),
        ("title", "付款\u202egnp.exe", "202E"),
        ("title", "\u2066隔离\u2069", "2066"),
    ],
)
async def test_json_api_refuses_control_and_bidi_characters(
    anon, as_user, conn, field, value, char
) -> None:
    r = await _post_case(anon, as_user, conn, **{field: value})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error" and body["field"] == field
    [err] = body["errors"]
    assert err["code"] == "control_character"
    assert err["message"] == "含有不允许的控制字符或双向控制字符"
    en = await _post_case(anon, as_user, conn, lang="en", **{field: value})
    assert f"U+{char}" in en.json()["errors"][0]["message"], en.text


async def test_a_lone_surrogate_is_refused(anon, as_user, conn) -> None:
    r = await _post_case(anon, as_user, conn, description="孤\ud800")
    assert r.status_code == 422 and r.json()["field"] == "description", r.text


async def test_tab_newline_and_cr_are_text(anon, as_user, conn) -> None:
    r = await _post_case(anon, as_user, conn, description="第一行\r\n第二行\t完")
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "第一行\r\n第二行\t完"


async def test_every_request_model_checks_nested_texts() -> None:
    from pydantic import ValidationError

    from app.schemas import CleanStr, RequestModel

    class Nested(RequestModel):
        tags: list[str]
        attrs: dict[str, str]
        one: CleanStr = ""

    Nested(tags=["好"], attrs={"k": "v\n"})
    for bad in (
        {"tags": ["a\x00"], "attrs": {}},
        {"tags": [], "attrs": {"k\x02": "v"}},
        {"tags": [], "attrs": {"k": "\u202d"}},
        {"tags": [], "attrs": {}, "one": "a\x0cb"},
    ):
        with pytest.raises(ValidationError) as e:
            Nested.model_validate(bad)
        assert e.value.errors()[0]["type"] == "control_character"


async def test_other_bodies_refuse_them_too(anon, as_user, demo) -> None:
    r = await anon.patch(
        f"/api/v1/areas/{demo['360602001001']}",
        headers=as_user("admin"),
        json={"name": "立新\x08社区"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["code"] == "control_character"


async def test_open311_form_refuses_them(anon, as_user, conn, demo) -> None:
    lon, lat = await point_in(conn, GRID)
    key = await new_key(anon, as_user, area_ids=[demo["360602001000"]])
    form = {
        "api_key": key["key"],
        "service_code": await cgj_category(conn),
        "lat": str(lat),
        "long": str(lon),
        "description": "井盖\x03缺失",
    }
    check_error(await anon.post(f"{V2}/requests.xml", data=form), 400)


async def test_a_stored_control_character_never_breaks_requests_xml(
    anon, as_user, conn, monkeypatch
) -> None:
    from app.config import get_settings
    from app.open311.public_ids import encode

    # every channel published here (issue 17 keeps grid workers' reports internal by default)
    monkeypatch.setattr(
        get_settings(), "open311_public_channels", "app,hotline,qr,department,console"
    )
    case = await _report(anon, as_user, conn)
    public = encode(case["id"])
    # as stored before the input refused it (or written by something other than the API)
    await conn.execute(
        text("UPDATE cases SET description = :d WHERE id = :id"),
        {"d": "井盖\x01缺\x1f失\ufffe", "id": case["id"]},
    )
    for path in (f"{V2}/requests.xml", f"{V2}/requests/{public}.xml"):
        r = await anon.get(path, params={"service_request_id": public})
        tree = xml_of(r, "service_requests")
        [desc] = [el.text for el in tree.iter("description")]
        assert desc == "井盖缺失"
    # and the bytes themselves parse (no character reference to a control character either)
    r = await anon.get(f"{V2}/requests.xml", params={"service_request_id": public})
    SafeET.fromstring(r.content)
    assert b"&#1;" not in r.content and b"\x01" not in r.content

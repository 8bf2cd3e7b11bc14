"""Issue 17, dates at the edges of the calendar: `grids/lookup?at=9999-12-31T23:59:59+00:00` (year
10000 in Shanghai) and the stats reads with `until=0001-01-01` answered 500 (OverflowError in
period arithmetic). Every date and time the API reads accepts the years 2000 to 2100 and says so
in openapi.yaml (`pattern`, `x-earliest`, `x-latest`); outside them a 422 (400 at the Open311
door), never a 500.

The sweep takes every date and date-time query parameter of every operation from the app's own
OpenAPI document, fills the other path parameters with real ids, and sends both edges."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.main import app
from app.schemas import YEAR_PATTERN, parse_instant

EDGES = ("0001-01-01", "9999-12-31T23:59:59+00:00", "1999-12-31", "2101-01-01T00:00:00+08:00")
TEXT_TIMES = {
    # parameters typed as text that the service parses as times (the spec's own W3C strings)
    ("/open311/v2/requests.{fmt}", "start_date"),
    ("/open311/v2/requests.{fmt}", "end_date"),
    ("/open311/v2/requests.{fmt}", "updated_after"),
    ("/open311/v2/requests.{fmt}", "updated_before"),
    ("/open311/v2/servicerequestupdates.{fmt}", "updated_after"),
    ("/open311/v2/servicerequestupdates.{fmt}", "updated_before"),
}


def _format(schema: dict[str, Any]) -> str | None:
    if schema.get("format") in ("date", "date-time"):
        return str(schema["format"])
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found = _format(sub)
            if found:
                return found
    return None


def _time_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    if schema.get("format") in ("date", "date-time"):
        return [schema]
    return [
        s for key in ("anyOf", "oneOf") for sub in schema.get(key, []) for s in _time_schemas(sub)
    ]


def _time_params() -> list[tuple[str, str, str, dict[str, Any]]]:
    doc = app.openapi()
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                if p["in"] == "query" and (
                    _format(p.get("schema", {})) or (path, p["name"]) in TEXT_TIMES
                ):
                    out.append((method.upper(), path, p["name"], p.get("schema", {})))
    return out


def test_every_time_parameter_declares_the_range() -> None:
    params = _time_params()
    assert len(params) >= 30, params
    for method, path, name, schema in params:
        if (path, name) in TEXT_TIMES:
            continue
        for s in _time_schemas(schema):
            assert s.get("pattern") == YEAR_PATTERN, (method, path, name, schema)
            assert s.get("x-earliest") == "2000-01-01" and s.get("x-latest") == "2100-12-31"


def test_parse_instant_refuses_the_edges() -> None:
    for edge in EDGES:
        with pytest.raises(ValueError):
            parse_instant(edge)
    assert parse_instant("2100-12-31T23:59:59+00:00").year == 2100


async def test_every_time_parameter_at_both_edges_is_refused_not_500(
    client: httpx.AsyncClient, conn: Any, tokens: dict[str, str]
) -> None:
    area = (await conn.execute(text("SELECT min(id) FROM areas"))).scalar_one()
    grid = (await conn.execute(text("SELECT min(id) FROM grids"))).scalar_one()
    worker_id = (
        await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))
    ).scalar_one()
    values = {
        "area_id": area,
        "grid_id": grid,
        "worker_id": worker_id,
        "fmt": "json",
        "z": 14,
        "x": 13600,
        "y": 6900,
    }
    seen = out_of_range = 0
    for method, path, name, _ in _time_params():
        url = re.sub(r"\{([^}]+)\}", lambda m: str(values[m.group(1)]), path)
        params: dict[str, str] = {}
        if path.endswith("/grids/lookup"):
            params = {"lon": "117.07", "lat": "28.24"}
        # The admin, or for a grid worker's own routes (the work log) the worker.
        worker = {"Authorization": f"Bearer {tokens['worker']}"}
        headers = worker if path.startswith("/api/v1/me/worklog") else {}
        for edge in EDGES:
            r = await client.request(method, url, params={**params, name: edge}, headers=headers)
            assert r.status_code < 500, (path, name, edge, r.text)
            if path.startswith("/open311/"):
                assert r.status_code == 400, (path, name, edge, r.text)
                continue
            assert r.status_code == 422, (path, name, edge, r.status_code, r.text)
            body = r.json()
            assert body["code"] == "validation_error"
            # a day parameter sent a time with its clock is refused as not a day
            assert body["errors"][0]["code"] in ("time_out_of_range", "date_from_datetime_inexact")
            out_of_range += body["errors"][0]["code"] == "time_out_of_range"
            assert body["field"] == name
            seen += 1
        # and the edges inside the range are read
        inside = await client.request(
            method, url, params={**params, name: "2000-01-01"}, headers=headers
        )
        assert inside.status_code < 500, (path, name, inside.text)
    assert seen >= 100 and out_of_range >= 90, (seen, out_of_range)

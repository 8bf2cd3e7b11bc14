"""Issue 17, boundary hygiene: an integer in a path or in an id query parameter is read by one
strict rule (`app.schemas.strict_integer`). Before, pydantic's lax reading took `01`, `+1` and
` 1` for object 1 and `1_0` for object 10, so one object had many URLs (and caches, audit lines
and rate-limit keys that disagreed about which one was asked for).

An integer segment of a path matches ASCII digits only (`app.http.DigitsConvertor`, like
Django's `<int:…>`): `+1`, `1_0`, ` 1` and `１` name no object, so the route does not match and
the path is a 404 `route_not_found` (or a 405 with its `Allow`); digits with a leading zero match
and are a 422 `integer_format` naming the parameter. The test walks the route table: every route
with an integer in its path, every method, as the administrator (who passes the policy of nearly
every route), with each lax form in each integer parameter. Refusals that come before the
parameter is read (401/403, 428 for a missing If-Match) are fine; a 2xx or a 500 never is."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from app.http import api_routes
from app.main import app

ZEROS = ["01", "007"]
"""Digits with a leading zero: the route matches, the value is refused (422)."""
LAX = ["+1", "1_0", "%201", "%EF%BC%91", "1.0"]
"""Sign, underscore, a space, the full-width digit １, a decimal: no route matches (404/405)."""


def _int_params(route: Any) -> list[str]:
    return [f.name for f in route.dependant.path_params if f.field_info.annotation is int]


def _url(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}:]+)\}", lambda m: values.get(m.group(1), "json"), path)


def _valid(name: str) -> str:
    return {"year": "2026", "z": "3", "x": "1", "y": "1"}.get(name, "1")


async def test_every_integer_in_a_path_is_strict(
    anon: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    routes = [r for r in api_routes(app.routes) if _int_params(r)]
    assert len(routes) > 80, len(routes)
    refused = unmatched = 0
    wrong = []
    for route in routes:
        ints = _int_params(route)
        literal = re.search(r"actions/([a-z_]+)", route.path_format)
        fixed = {"action": literal.group(1) if literal else "register", "fmt": "json"}
        for method in sorted((route.methods or set()) - {"HEAD"}):
            kwargs: dict[str, Any] = {"headers": headers}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = {}
            for name in ints:
                for lax in ZEROS + LAX:
                    values = {**fixed, **{n: _valid(n) for n in ints}, name: lax}
                    url = _url(route.path_format, values)
                    r = await anon.request(method, url, **kwargs)
                    if r.status_code in (401, 403, 428):
                        continue
                    body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
                    errors = body.get("errors") or []
                    if (
                        lax in ZEROS
                        and r.status_code == 422
                        and any(
                            e.get("field") == name and e.get("code") == "integer_format"
                            for e in errors
                        )
                    ):
                        refused += 1
                        continue
                    if lax in LAX and (
                        (r.status_code == 404 and body.get("code") == "route_not_found")
                        or (r.status_code == 405 and method not in r.headers.get("allow", ""))
                    ):
                        unmatched += 1
                        continue
                    wrong.append((method, url, r.status_code, r.text[:200]))
    assert not wrong, (len(wrong), sorted({(m, u.split("?")[0], s) for m, u, s, _ in wrong})[:40])
    assert refused > 150 and unmatched > 400, (refused, unmatched)


@pytest.mark.parametrize(
    "query",
    ["grid_id=01", "grid_id=%2B1", "grid_id=1_0", "street_id=%201", "reporter_id=%EF%BC%91"],
)
# The query string has no routes to miss: every lax form of an id there is a 422.
async def test_id_query_parameters_are_as_strict(
    anon: httpx.AsyncClient, tokens: dict[str, str], query: str
) -> None:
    r = await anon.get(
        f"/api/v1/cases?{query}", headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    field = query.split("=")[0]
    assert {"field": field, "code": "integer_format"}.items() <= r.json()["errors"][0].items()
    assert r.json()["errors"][0]["message"].startswith("应为十进制整数")


async def test_the_strict_forms_still_read(anon: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    assert (await anon.get("/api/v1/cases?grid_id=1", headers=headers)).status_code == 200
    assert (await anon.get("/api/v1/areas/1", headers=headers)).status_code in (200, 404)
    assert (await anon.get("/api/v1/calendar/2026", headers=headers)).status_code == 200
    tile = await anon.get("/tiles/grids/0/0/0.mvt", headers=headers)
    assert tile.status_code in (200, 204), tile.text
    assert (await anon.get("/tiles/grids/00/0/0.mvt", headers=headers)).status_code == 422
    # a literal path beside an id route is its own path: an undeclared method there is a 405
    r = await anon.patch("/api/v1/grids/lookup", headers=headers, json={})
    assert r.status_code == 405, r.text
    assert "PATCH" not in r.headers["allow"] and "GET" in r.headers["allow"]

"""The authorisation matrix: every route × every role × an object inside and one outside the
caller's scope, generated from the app's route table (OWASP API1: broken object-level authz).

The expectations below are written out by hand, independently of `app.auth.policy.RULES`; a new
permission, or a route whose permission is not listed here, fails the test.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.http import api_routes
from app.main import app

ALL = {
    "admin",
    "centre",
    "street",
    "community",
    "governance",
    "leader",
    "worker",
    "worker2",
    "dept",
}
AREA_STAFF = {"admin", "centre", "street", "community"}
CASE_STAFF = AREA_STAFF | {"leader", "worker", "worker2"}
EXPECTED_ROLES: dict[str, set[str] | str | None] = {
    "public": None,  # anyone, signed in or not
    "events:stream": None,  # the stream checks its ticket itself: anonymous gets 401 (below)
    "map:read": None,  # anyone; a token adds case fields in scope (tests/api/test_ogc.py)
    "signed_in": ALL,
    "registry:read": ALL,
    "registry:report": AREA_STAFF,
    "registry:write": {"admin", "centre"},
    "buildings:write": AREA_STAFF,
    "staff:read": AREA_STAFF | {"leader"},
    "cases:report": CASE_STAFF,
    "cases:read": ALL,
    "cases:work": CASE_STAFF,
    "cases:place": {"admin", "centre"},
    "loop:triage": AREA_STAFF,
    "loop:whistle": {"admin", "community"},
    "loop:dispatch": {"admin", "centre", "street"},
    "loop:department": {"admin", "dept"},
    "loop:grid": {"admin", "worker", "worker2", "leader", "community"},
    "webhooks:manage": {"admin", "dept"},
    "webhooks:monitor": {"admin"},
    "catalogue:write": {"admin"},
    "users:admin": {"admin"},
    "departments:write": {"admin"},
    "audit:read": {"admin"},
    "open311:public": None,  # Open311 reads and the residents' QR form: anyone
    "open311:submit": "api_key",  # an integrator's api_key, whatever the bearer: 403 without
    "open311:keys": {"admin"},
    "community:read": AREA_STAFF,
    "community:manage": {"admin", "community"},
    "community:rate": {"admin", "street", "community"},
    "community:collect": CASE_STAFF,
    "community:department": {"admin", "dept"},
    "support:read": ALL,
    "support:publish": {"admin", "dept"},
    "stats:read": ALL,
    "stats:configure": {"admin", "centre"},
    "patrols:field": {"leader", "worker", "worker2"},
    "patrols:read": CASE_STAFF,
    "fieldwork:record": {"leader", "worker", "worker2"},
    "fieldwork:read": CASE_STAFF,
    "checkpoints:manage": {"admin", "street", "community"},
    "coverage:read": AREA_STAFF | {"leader"},
    "worklog:read": AREA_STAFF,
    "positions:live": {"centre"},
    "duty:read": AREA_STAFF,
    "duty:manage": {"admin", "street", "community"},
    "tasks:mine": ALL,
    "tasks:assign": {"admin", "centre", "street", "community", "dept"},
    "tasks:read": AREA_STAFF | {"leader", "dept"},
    "tasks:approve": {"admin", "street"},
    "admission:read": ALL,
    "admission:manage": {"admin", "centre"},
    "basedata:read": CASE_STAFF | {"dept", "governance"},
    "basedata:write": {"admin", "community", "governance", "worker", "worker2", "leader"},
    "basedata:sensitive": {"admin", "governance"},
    "basedata:erase": {"admin", "community"},
    "basedata:catalogue": {"admin", "centre"},
    "disputes:read": CASE_STAFF | {"governance"},
    "disputes:work": {"admin", "community", "governance", "worker", "worker2", "leader"},
}
SCOPED = {
    "registry:report",
    "registry:write",
    "buildings:write",
    "staff:read",
    "cases:read",
    "cases:work",
    "cases:place",
    "loop:triage",
    "loop:whistle",
    "loop:dispatch",
    "loop:department",
    "loop:grid",
    "community:read",
    "community:manage",
    "community:rate",
    "community:collect",
    "stats:read",
    "patrols:field",
    "patrols:read",
    "fieldwork:record",
    "fieldwork:read",
    "checkpoints:manage",
    "coverage:read",
    "positions:live",
    "duty:read",
    "duty:manage",
    "admission:manage",
    "basedata:read",
    "basedata:write",
    "basedata:sensitive",
    "basedata:erase",
    "basedata:catalogue",
    "disputes:read",
    "disputes:work",
}

# Which of the test's objects lie in each account's scope ("in" = 立新社区 of 江边街道, 月湖区,
# and its first grid; "out" = a community of another district).
IN_SCOPE = {
    "admin": {"in", "out"},
    "centre": {"in"},
    "street": {"in"},
    "community": {"in"},
    "governance": {"in"},
    "leader": {"in"},
    "worker": {"in"},
    "worker2": set(),
    "dept": set(),
}

ROUTES = [
    (m, r.path_format, r.permission) for r in api_routes(app.routes) for m in sorted(r.methods)
]
ROLES = ["anonymous", *sorted(ALL)]
INTS = {
    f.name
    for r in api_routes(app.routes)
    for f in r.dependant.path_params
    if f.field_info.annotation is int
}
_INT_FILL = {"year": "2026"}


def _cells() -> list[Any]:
    cells = []
    for method, path, perm in ROUTES:
        places = (
            ["in", "out"]
            if re.search(r"\{(area|grid|building|case|attachment)_id\}", path)
            else ["-"]
        )
        for role in ROLES:
            for place in places:
                cells.append(
                    pytest.param(
                        method, path, perm, role, place, id=f"{method} {path} {role} {place}"
                    )
                )
    return cells


def test_every_permission_has_written_expectations() -> None:
    from app.auth.policy import RULES

    assert set(RULES) == set(EXPECTED_ROLES)
    for _, path, perm in ROUTES:
        assert perm in EXPECTED_ROLES, path
    for name, rule in RULES.items():
        assert rule.scoped == (name in SCOPED), name


WORLD = """
WITH d AS (INSERT INTO areas (level, code, name, parent_id)
           SELECT 'district', '360622000000', '余江区', parent_id FROM areas WHERE code = '360602000000'
           RETURNING id),
s AS (INSERT INTO areas (level, code, name, parent_id) SELECT 'street', '360622001000', '邓埠镇', id FROM d
      RETURNING id),
c AS (INSERT INTO areas (level, code, name, parent_id, boundary)
      SELECT 'community', '360622001001', '外区社区', id,
             ST_Multi(ST_MakeEnvelope(116.80, 28.20, 116.82, 28.22, 4326)) FROM s RETURNING id),
g AS (INSERT INTO grids (code, name, community_id, kind, households)
      SELECT 'OUT1', '外区网格', id, 'city', 300 FROM c RETURNING id),
b AS (INSERT INTO grid_boundaries (grid_id, boundary, valid_from)
      SELECT id, ST_Multi(ST_MakeEnvelope(116.80, 28.20, 116.81, 28.21, 4326)), now() FROM g),
bl AS (INSERT INTO buildings (grid_id, name, households, units, geom)
       SELECT id, '外区1栋', 10, 1, ST_SetSRID(ST_MakePoint(116.805, 28.205), 4326) FROM g
       RETURNING id)
SELECT (SELECT id FROM c) AS area, (SELECT id FROM g) AS grid, (SELECT id FROM bl) AS building
"""
# A case (with a timeline step and a photo) in a given grid, reported by the admin; every row
# names its district (the distribution column on Citus).
CASE = """
WITH g AS (SELECT g.id, g.community_id, c.parent_id AS street, s.parent_id AS district
           FROM grids g JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id
           WHERE g.code = :grid),
k AS (INSERT INTO cases (number, category_code, title, location, reporter_id, grid_id,
                         community_id, street_id, district_id)
      SELECT 'M' || :grid, (SELECT code FROM categories ORDER BY code LIMIT 1), 'matrix',
             ST_SetSRID(ST_MakePoint(117, 28), 4326), (SELECT id FROM users WHERE username = 'admin'),
             g.id, g.community_id, g.street, g.district FROM g RETURNING id, district_id),
e AS (INSERT INTO case_events (case_id, district_id, action)
      SELECT id, district_id, 'reported' FROM k RETURNING id, case_id, district_id),
a AS (INSERT INTO attachments (case_id, district_id, event_id, sha256, media_type, bytes, width,
                               height)
      SELECT case_id, district_id, id, repeat('a', 64), 'image/jpeg', 1, 1, 1 FROM e RETURNING id)
SELECT (SELECT id FROM k) AS case_id, (SELECT id FROM a) AS attachment_id
"""
INSIDE = """
SELECT (SELECT id FROM areas WHERE code = '360602001001') AS area,
       (SELECT id FROM grids WHERE code = '360602001001001') AS grid,
       (SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id
        WHERE g.code = '360602001001001' ORDER BY b.id LIMIT 1) AS building,
       (SELECT id FROM users WHERE username = 'worker2') AS user_id,
       (SELECT p.id FROM posts p JOIN users u ON u.id = p.user_id WHERE u.username = 'worker2') AS post_id,
       (SELECT id FROM departments WHERE code = 'CGJ') AS department_id
"""


def _expect(perm: str, role: str, place: str) -> tuple[int, str] | None:
    """None = allowed; else the (status, code) of the denial."""
    roles = EXPECTED_ROLES[perm]
    if perm == "events:stream" and role == "anonymous":
        return 401, "unauthenticated"
    if roles == "api_key":  # Open311's error shape: [{code: 403, description}]
        return 403, 403
    if roles is None:
        return None
    if role == "anonymous":
        return 401, "unauthenticated"
    if role not in roles:
        return 403, "forbidden"
    if perm in SCOPED and place != "-" and place not in IN_SCOPE[role]:
        return 404, "not_found"
    return None


@pytest.mark.parametrize(("method", "path", "perm", "role", "place"), _cells())
async def test_matrix(
    anon: httpx.AsyncClient, tokens, conn, monkeypatch, method, path, perm, role, place
) -> None:
    from app.events import stream

    monkeypatch.setattr(stream, "MAX_STREAM_SECONDS", 0)  # the stream ends at once
    out = (await conn.execute(text(WORLD))).one()
    ins = (await conn.execute(text(INSIDE))).one()
    obj = out if place == "out" else ins
    case = (
        await conn.execute(text(CASE), {"grid": "OUT1" if place == "out" else "360602001001001"})
    ).one()
    rule = (
        await conn.execute(
            text(
                "INSERT INTO routing_rules (category_code, department_id) SELECT "
                "(SELECT code FROM categories ORDER BY code LIMIT 1), "
                "(SELECT id FROM departments ORDER BY id LIMIT 1) RETURNING id, category_code"
            )
        )
    ).one()
    url = (
        path.replace("{area_id}", str(obj.area))
        .replace("{code}", rule.category_code)
        .replace("{rule_id}", str(rule.id))
        .replace("{case_id}", str(case.case_id))
        .replace("{attachment_id}", str(case.attachment_id))
        .replace("{grid_id}", str(obj.grid))
        .replace("{building_id}", str(obj.building))
        .replace("{user_id}", str(ins.user_id))
        .replace("{post_id}", str(ins.post_id))
        .replace("{department_id}", str(ins.department_id))
        .replace("{grid_code}", "360602001001001")
        .replace("{fmt}", "json")
    )
    # Any other integer of the path (tile z/x/y, a year, ids of kinds the test makes none of):
    # digits, so the route matches (`app.http.DigitsConvertor`); an id of 0, out of range, is a
    # 422 for a role the policy lets through, as the literal placeholder was before.
    url = re.sub(r"\{(\w+)\}", lambda m: _INT_FILL.get(m[1], "0") if m[1] in INTS else m[0], url)
    headers = {} if role == "anonymous" else {"Authorization": f"Bearer {tokens[role]}"}
    kwargs: dict[str, Any] = {}
    if method in ("POST", "PATCH", "PUT"):
        kwargs["json"] = {}
    r = await anon.request(method, url, headers=headers, **kwargs)
    want = _expect(perm, role, place)
    if want is None:
        assert r.status_code not in (401, 403), (r.status_code, r.text)
        if r.status_code == 404 and r.headers["content-type"].startswith("application/problem"):
            assert r.json()["code"] not in ("not_found",), r.text
        assert r.status_code < 500, r.text
    else:
        body = r.json()
        code = body[0]["code"] if isinstance(body, list) else body.get("code")
        assert (r.status_code, code) == want, r.text

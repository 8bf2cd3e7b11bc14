"""Issue 17, existence and enumeration: an object out of the reader's scope and an object that
does not exist answer the same 404, byte for byte (the case said "对象不存在：2" when it existed
elsewhere and "事件不存在：99999" when it did not; attachments the same).

The test walks the app's route table: every route with an integer id in its path, every method,
as every demo role, with real ids (a few of each kind, spread over the table) and with ids that do
not exist. Whenever a real id answers 404, its body must be the very bytes a nonexistent id gets,
once the two things that name the request itself are set aside: the `instance` (the path, whose
id differs) and the `request_id`."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from app.http import api_routes
from app.main import app
from tests.helpers import DEMO_USERS

TABLES = {
    "area_id": "areas",
    "attachment_id": "attachments",
    "building_id": "buildings",
    "case_id": "cases",
    "department_id": "departments",
    "grid_id": "grids",
    "key_id": "open311_keys",
    "matter_id": "community_matters",
    "measure_id": "grid_support_measures",
    "meeting_id": "community_meetings",
    "need_id": "community_needs",
    "post_id": "posts",
    "project_id": "community_projects",
    "review_id": "community_list_reviews",
    "rule_id": "routing_rules",
    "service_id": "volunteer_services",
    "subscription_id": "webhook_subscriptions",
    "task_id": "community_tasks",
    "unit_id": "community_units",
    "user_id": "users",
    "worker_id": "users",
    "volunteer_task_id": "volunteer_tasks",
    "patrol_id": "patrols",
    "checkpoint_id": "checkpoints",
    "visit_id": "visits",
    "slot_id": "duty_slots",
    "house_id": "houses",
    "household_id": "households",
    "resident_id": "residents",
    "organisation_id": "organisations",
    "dispute_id": "disputes",
}
"""Each integer path parameter → the table of its objects (a new id kind must be added here)."""
ROUTE_TABLES = {
    ("/api/v1/worker-tasks/", "task_id"): "worker_tasks",
    ("/api/v1/me/tasks/", "task_id"): "worker_tasks",
    ("/api/v1/me/push/", "subscription_id"): "push_subscriptions",
}
"""The same parameter name for another kind of object under these paths."""


def _table(path: str, name: str) -> str:
    for (prefix, param), table in ROUTE_TABLES.items():
        if param == name and path.startswith(prefix):
            return table
    return TABLES[name]


SKIP = {"x", "y", "z", "year"}  # tile coordinates and calendar years: not objects
MISSING = 987_654_321


def _normalised(body: bytes, path: str) -> bytes:
    doc = orjson.loads(body)
    assert isinstance(doc, dict), body
    doc.pop("request_id", None)
    assert doc.get("instance") == path, (doc, path)
    doc["instance"] = "…"
    return orjson.dumps(doc)


async def _samples(conn: Any, table: str) -> list[int]:
    """Up to five ids spread over the table (first, last, between)."""
    ids = [
        int(i)
        for i in (
            await conn.execute(
                text(
                    "SELECT id FROM (SELECT id, ntile(5) OVER (ORDER BY id) AS t FROM "
                    + table  # a table name from TABLES above, never input
                    + ") x WHERE t IS NOT NULL GROUP BY t, id ORDER BY id"
                )
            )
        ).scalars()
    ]
    if len(ids) <= 5:
        return ids
    step = (len(ids) - 1) / 4
    return sorted({ids[round(i * step)] for i in range(5)})


def _url(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"\{([^}:]+)\}", lambda m: str(values.get(m.group(1), "json")), path)


async def test_out_of_scope_and_nonexistent_404s_are_the_same_bytes(
    anon: httpx.AsyncClient, tokens: dict[str, str], conn: Any
) -> None:
    tables = set(TABLES.values()) | set(ROUTE_TABLES.values())
    samples = {table: await _samples(conn, table) for table in sorted(tables)}
    routes = []
    for route in api_routes(app.routes):
        names = [f.name for f in route.dependant.path_params]
        ints = [f.name for f in route.dependant.path_params if f.field_info.annotation is int]
        if not ints or SKIP & set(names):
            continue
        assert set(ints) <= set(TABLES), f"{route.path_format}: add its id kinds to TABLES"
        if set(names) - set(ints) - {"fmt", "action"}:
            continue
        routes.append(route)
    assert len(routes) > 50, len(routes)
    readable = {
        (route.path_format, m) for route in routes for m in (route.methods or ()) if m == "GET"
    }
    hidden: set[tuple[str, str]] = set()  # (role, url) whose GET answered 404
    compared = 0
    differing = []
    # GET first: a write is sent with a real id only where the same role's GET of that URL
    # answered 404 (the object is out of its scope), so the walk never changes an object the
    # role may change (some writes commit on connections of their own).
    routes.sort(key=lambda r: "GET" not in (r.methods or ()))
    for route in routes:
        ints = [f.name for f in route.dependant.path_params if f.field_info.annotation is int]
        action = next((f for f in route.dependant.path_params if f.name == "action"), None)
        fixed: dict[str, Any] = {}
        if action is not None:
            literal = re.search(r"actions/([a-z_]+)", route.path_format)
            fixed["action"] = literal.group(1) if literal else "register"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for role in DEMO_USERS:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                kwargs: dict[str, Any] = {"headers": headers}
                if method in ("POST", "PUT", "PATCH"):
                    kwargs["json"] = {}
                missing_url = _url(route.path_format, {**fixed, **dict.fromkeys(ints, MISSING)})
                missing = await anon.request(method, missing_url, **kwargs)
                if missing.status_code != 404:
                    continue  # refused before the object is looked up (403, 422): no oracle
                reference = _normalised(missing.content, missing_url)
                for name in ints:
                    for real in samples[_table(route.path_format, name)]:
                        values = {**fixed, **dict.fromkeys(ints, MISSING), name: real}
                        for other in ints:  # the other ids: real ones too, when they exist
                            known = samples[_table(route.path_format, other)]
                            if other != name and known:
                                values[other] = known[0]
                        url = _url(route.path_format, values)
                        if method != "GET" and (
                            (route.path_format, "GET") not in readable or (role, url) not in hidden
                        ):
                            continue
                        r = await anon.request(method, url, **kwargs)
                        if r.status_code != 404:
                            continue
                        if method == "GET":
                            hidden.add((role, url))
                        compared += 1
                        if _normalised(r.content, url) != reference:
                            differing.append((method, route.path_format, role, url, r.text))
    assert not differing, differing[:5]
    assert compared > 200, compared

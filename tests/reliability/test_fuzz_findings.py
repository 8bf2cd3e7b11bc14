"""What the fuzzer found, pinned as plain tests (each failed before its fix)."""

from __future__ import annotations

from tests.helpers import problem


async def test_export_in_scope_with_an_area(anon, as_user, demo) -> None:
    """Two recursive 'below' CTEs (the area asked for and the caller's scope) in one query."""
    r = await anon.get(
        "/api/v1/grids/export",
        params={"area_id": demo["360602001000"]},
        headers=as_user("centre"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"]


async def test_numbers_beyond_bigint_are_422(anon, as_user) -> None:
    h = as_user("admin")
    huge = 100362390540460559958016
    problem(
        await anon.get("/api/v1/users", params={"offset": huge}, headers=h), 422, "validation_error"
    )
    problem(await anon.get(f"/api/v1/cases/{huge}", headers=h), 422, "validation_error")
    r = await anon.get("/api/v1/events/stream", headers={**h, "Last-Event-ID": str(huge)})
    problem(r, 422, "validation_error")


async def test_a_post_ending_before_it_starts_is_422(anon, as_user, conn) -> None:
    from sqlalchemy import text

    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))).scalar()
    r = await anon.post(
        f"/api/v1/users/{uid}/posts",
        json={"ends_on": "2000-01-01", "role": "admin"},
        headers=as_user("admin"),
    )
    problem(r, 422, "validation_error")


async def test_a_boolean_is_not_a_coordinate(anon, as_user, demo) -> None:
    """`"lat": false` was read as 0 and a grid's need was stored at latitude 0 (ST201)."""
    from tests.factories import DEMO_GRID

    body = {
        "category": "legal",
        "title": "求助",
        "households": 1,
        "source": "grid_visit",
        "location": {"lat": False, "lon": 117.0},
    }
    r = await anon.post(
        f"/api/v1/grids/{demo[DEMO_GRID]}/needs", json=body, headers=as_user("worker")
    )
    assert problem(r, 422, "validation_error")["field"] == "location.lat"
    body["location"] = None
    body["households"] = False  # and a count is no boolean either
    r = await anon.post(
        f"/api/v1/grids/{demo[DEMO_GRID]}/needs", json=body, headers=as_user("worker")
    )
    assert problem(r, 422, "validation_error")["field"] == "households"

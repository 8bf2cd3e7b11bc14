"""Every reader agrees with the one scope module (app.auth.scope).

Principals of every role (anonymous, grid worker ×2, grid leader, community, street, department
×2, centre, admin: the demo accounts) and cases of both privacy classes in and out of each one's
scope (their grids, other grids of their community, other communities and streets, dispatched to
a department or withdrawn from one, reported by a worker outside their grids). For each
principal, the set of cases that the scope module's predicate says it may see is compared with
what the case list, the case detail, the vector tiles, the OGC items, the sync, the live stream
(its fan-out and its replay), the figures (hot spots, channels) and their export show; and what
readers outside a case's scope see of it (OGC items, Open311) with the privacy rule; and the free
text that readers of masked data get with the PII detector.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from app.auth import scope
from app.auth.policy import RULES, decode_access_token, load_principal
from app.cases.service import sees_pii
from app.events import hub
from app.events.outbox import CHANGED_SQL, emit

PHONE = "13812345678"
SINCE, UNTIL = "2001-01-01T00:00:00+08:00", "2001-02-01T00:00:00+08:00"
USERS = ("admin", "centre", "street", "community", "leader", "worker", "worker2", "dept", "dept2")

_PLACES = text(
    """
    WITH mine AS (SELECT pg.grid_id FROM post_grids pg JOIN posts p ON p.id = pg.post_id
                  JOIN users u ON u.id = p.user_id WHERE u.username = :worker),
    theirs AS (SELECT pg.grid_id FROM post_grids pg JOIN posts p ON p.id = pg.post_id
               JOIN users u ON u.id = p.user_id WHERE u.username = :worker2),
    g AS (SELECT g.id, g.community_id, cm.parent_id AS street_id, cm.code AS community_code,
                 st.code AS street_code
          FROM grids g JOIN areas cm ON cm.id = g.community_id JOIN areas st ON st.id = cm.parent_id
          WHERE g.deleted_at IS NULL)
    SELECT
      (SELECT min(grid_id) FROM mine) AS own,
      (SELECT min(id) FROM g WHERE community_code = :community
         AND id NOT IN (SELECT grid_id FROM mine)) AS same_community,
      (SELECT min(id) FROM g WHERE street_code = :street AND community_code <> :community)
         AS same_street,
      (SELECT min(grid_id) FROM theirs) AS worker2,
      (SELECT min(id) FROM g WHERE street_code <> :street AND community_code <> :other
         AND id NOT IN (SELECT grid_id FROM theirs)) AS elsewhere
    """
)
_CATEGORY = text(
    "SELECT c.code FROM categories c WHERE c.active AND c.class_code = :cls ORDER BY c.code LIMIT 1"
)
_PUBLIC_CATEGORY = text(
    "SELECT c.code FROM categories c WHERE c.active AND NOT (c.class_code = ANY(:private)) "
    "ORDER BY c.code LIMIT 1"
)
_CASE = text(
    """
    INSERT INTO cases (number, category_code, title, description, address, location,
                       reporter_id, grid_id, community_id, street_id, district_id, status,
                       reported_at, change_seq)
    SELECT :number, :category, '楼道堵塞', '张女士 ' || :phone || ' 来电反映', '某路 1 号',
           ST_PointOnSurface(b.boundary), u.id, g.id, g.community_id,
           cm.parent_id, st.parent_id, :status, CAST(:at AS timestamptz), 1
    FROM grids g JOIN areas cm ON cm.id = g.community_id JOIN areas st ON st.id = cm.parent_id
    -- joins, not subqueries: Citus refuses subqueries (even uncorrelated ones) in the target
    -- list of an INSERT … SELECT over reference tables
    JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
    JOIN users u ON u.username = :reporter
    WHERE g.id = :grid
    RETURNING id, district_id
    """
)
_ASSIGN = text(
    """
    INSERT INTO case_assignments (case_id, department_id, district_id, role, state, limits,
                                  sign_in_due)
    SELECT :case, d.id, :district, 'lead', :state, '{}'::jsonb, now() + interval '1 day'
    FROM departments d WHERE d.code = :dept
    """
)
_FACTS = text(
    """
    SELECT c.id, c.grid_id, c.reporter_id, c.community_id, c.street_id, c.district_id,
           ST_X(c.location) AS lon, ST_Y(c.location) AS lat, cat.class_code,
           coalesce(a.departments, '{}') AS departments
    FROM cases c JOIN categories cat ON cat.code = c.category_code
    -- a join on the district, not a subquery correlated to the case (Citus: "complex joins")
    LEFT JOIN (SELECT district_id, case_id, array_agg(department_id) AS departments
               FROM case_assignments WHERE state <> 'withdrawn' GROUP BY district_id, case_id) a
      ON a.district_id = c.district_id AND a.case_id = c.id
    WHERE c.id = ANY(:ids)
    """
)


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


async def _world(conn: Any) -> dict[int, Any]:
    """The cases of the test (their facts by id)."""
    from app.demo.accounts import COMMUNITY, OTHER_COMMUNITY, STREET

    places = (
        await conn.execute(
            _PLACES,
            {
                "worker": "worker",
                "worker2": "worker2",
                "community": COMMUNITY,
                "street": STREET,
                "other": OTHER_COMMUNITY,
            },
        )
    ).one()
    assert None not in tuple(places), places
    private = sorted(scope.private_classes())
    categories = {
        "public": (await conn.execute(_PUBLIC_CATEGORY, {"private": private})).scalar_one(),
        "private": (await conn.execute(_CATEGORY, {"cls": private[0]})).scalar_one(),
    }
    ids: list[int] = []
    n = 0
    for place in ("own", "same_community", "same_street", "worker2", "elsewhere"):
        for kind, category in categories.items():
            n += 1
            dispatched = place == "elsewhere"
            row = (
                await conn.execute(
                    _CASE,
                    {
                        "number": f"VIS{n:04d}{kind[:2]}",
                        "category": category,
                        "phone": PHONE,
                        "reporter": "admin",
                        "status": "dispatched" if dispatched else "registered",
                        "at": datetime.fromisoformat(f"2001-01-{10 + n:02d}T10:00:00+08:00"),
                        "grid": getattr(places, place),
                    },
                )
            ).one()
            ids.append(row.id)
            if dispatched:
                await conn.execute(
                    _ASSIGN,
                    {
                        "case": row.id,
                        "district": row.district_id,
                        "dept": "CGJ",
                        "state": "dispatched",
                    },
                )
            if place == "same_community" and kind == "private":
                await conn.execute(
                    _ASSIGN,
                    {
                        "case": row.id,
                        "district": row.district_id,
                        "dept": "ZJJ",
                        "state": "handling",
                    },
                )
            if place == "same_street":
                await conn.execute(
                    _ASSIGN,
                    {
                        "case": row.id,
                        "district": row.district_id,
                        "dept": "ZJJ",
                        "state": "withdrawn",
                    },
                )
    # One reported by the worker outside their grids: theirs by the reporter's rule.
    row = (
        await conn.execute(
            _CASE,
            {
                "number": "VIS0099pu",
                "category": categories["public"],
                "phone": PHONE,
                "reporter": "worker",
                "status": "registered",
                "at": datetime.fromisoformat("2001-01-30T10:00:00+08:00"),
                "grid": places.elsewhere,
            },
        )
    ).one()
    ids.append(row.id)
    await conn.execute(text(CHANGED_SQL), {"ids": ids})  # a writer marks its cases (0025)
    return {r.id: r for r in await conn.execute(_FACTS, {"ids": ids})}


def _ref(r: Any) -> scope.CaseRef:
    return scope.CaseRef(
        areas=frozenset(a for a in (r.community_id, r.street_id, r.district_id) if a),
        grid_id=r.grid_id,
        reporter_id=r.reporter_id,
        departments=frozenset(r.departments),
    )


async def _ids(conn: Any, sql: str, binds: dict[str, Any], ours: list[int]) -> set[int]:
    rows = await conn.execute(text(sql), {**binds, "ours": ours})
    return {r[0] for r in rows}


@pytest.mark.parametrize("username", [None, *USERS])
async def test_every_reader_agrees_with_the_scope_module(
    anon, as_user, conn, session, tokens, username, monkeypatch
) -> None:
    from app.config import get_settings
    from app.open311.public_ids import decode, encode

    # every channel published here (issue 17 keeps internal reports out of the feed by default)
    monkeypatch.setattr(
        get_settings(), "open311_public_channels", "app,hotline,qr,department,console"
    )
    cases = await _world(conn)
    ours = sorted(cases)
    who = None
    headers: dict[str, str] = {}
    if username is not None:
        uid, sid = decode_access_token(tokens[username])
        who = await load_principal(session, uid, sid)
        headers = as_user(username)
    mine = await scope.resolve(conn, who)

    # The predicate, in its forms: on a loaded case, on an object chain (the policy's check for
    # objects in the path), as SQL for lists, as the tiles' one prepared statement.
    want = {i for i, r in cases.items() if mine.covers(_ref(r))}
    if who is not None:
        chained = set()
        for i in ours:
            found, chain, grid, owner, depts = await scope.object_chain(conn, "case_id", i)
            if found and scope.covers(who, RULES["cases:read"], chain, grid, owner, depts):
                chained.add(i)
        assert chained == want
    frag = mine.sql("c")
    assert (
        await _ids(
            conn,
            f"SELECT c.id FROM cases c WHERE c.id = ANY(:ours) AND {frag.sql}",
            frag.binds,
            ours,
        )
        == want
    )
    assert (
        await _ids(
            conn,
            f"{scope.SCOPE_CTE} SELECT c.id FROM cases c WHERE c.id = ANY(:ours) "
            f"AND {scope.statement_sql('c')}",
            scope.statement_binds(mine),
            ours,
        )
        == want
    )
    # The expectations themselves: every role sees some of these cases and misses some.
    if username in ("admin", "centre"):  # the centre's post is the whole district
        assert want == set(ours)
    elif username is None:
        assert want == set()
    else:
        assert want and want != set(ours), username

    # Open311 (the public feed) and OGC items for the anonymous: the privacy rule.
    masked = not sees_pii(who)
    feed = (
        await anon.get(
            "/open311/v2/requests.json",
            params={"service_request_id": ",".join(map(encode, ours))},
        )
    ).json()
    assert {decode(r["service_request_id"]) for r in feed} == set(ours)
    for r in feed:
        fields = scope.public_fields(cases[decode(r["service_request_id"])].class_code)
        assert (r["lat"] is not None) == ("location" in fields)
        assert (r["address"] is not None) == ("location" in fields)
        assert (r["description"] is not None) == ("text" in fields)
        assert PHONE not in str(r)

    if who is None:
        r = await anon.get("/api/v1/cases", params={"since": SINCE})
        assert r.status_code == 401
    else:
        # The case list and the detail.
        listed = (
            await anon.get(
                "/api/v1/cases",
                params={"since": SINCE, "until": UNTIL, "limit": 200},
                headers=headers,
            )
        ).json()["items"]
        assert {c["id"] for c in listed} & set(ours) == want
        for c in listed:
            assert (PHONE in c["description"]) == (not masked)
        for i in ours:
            r = await anon.get(f"/api/v1/cases/{i}", headers=headers)
            assert r.status_code == (200 if i in want else 404), (username, i, r.text)
            if r.status_code == 200:
                assert (PHONE in r.json()["description"]) == (not masked)

        # The vector tiles.
        tiles = {_tile(r.lon, r.lat, 10) for r in cases.values()}
        drawn: set[int] = set()
        for x, y in tiles:
            r = await anon.get(
                f"/tiles/cases/10/{x}/{y}.mvt",
                params={"since": SINCE, "until": UNTIL},
                headers=headers,
            )
            assert r.status_code in (200, 204), r.text
            if r.status_code == 200:
                layer = mapbox_vector_tile.decode(r.content).get("cases", {"features": []})
                drawn |= {f["id"] for f in layer["features"]}
        assert drawn & set(ours) == want

        # The sync (the test's cases carry the oldest change stamp: they come first).
        synced = (await anon.get("/api/v1/sync", params={"limit": 500}, headers=headers)).json()
        assert {c["id"] for c in synced["cases"]} & set(ours) == want
        for c in synced["cases"]:
            if c["id"] in want:
                assert (PHONE in c["description"]) == (not masked)

        # The figures and their export.
        period = {"period": "custom", "since": SINCE, "until": UNTIL}
        hot = (await anon.get("/api/v1/stats/hotspots", params=period, headers=headers)).json()
        per_grid: dict[int, int] = {}
        for i in want:
            per_grid[cases[i].grid_id] = per_grid.get(cases[i].grid_id, 0) + 1
        assert {g["grid"]["id"]: g["total"] for g in hot["items"]} == per_grid
        channels = (await anon.get("/api/v1/stats/channels", params=period, headers=headers)).json()
        assert channels["total"] == len(want)
        r = await anon.get(
            "/api/v1/stats/export", params={**period, "table": "channels"}, headers=headers
        )
        assert r.status_code == 200, r.text
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        counts = [int(row[2]) for row in rows[1:] if len(row) > 2 and row[2].isdigit()]
        assert sum(counts) == len(want), rows

    # OGC items: in scope, every field (free text masked for readers of masked data); outside
    # it, what the privacy class allows.
    feats = (
        await anon.get(
            "/ogc/collections/cases/items",
            params={"datetime": "2001-01-01/2001-01-31", "limit": 1000},
            headers=headers,
        )
    ).json()["features"]
    by_id = {f["id"]: f for f in feats if f["id"] in cases}
    assert set(by_id) == set(ours)
    for i, f in by_id.items():
        props = f["properties"]
        assert ("overdue" in props) == (i in want)
        fields = scope.fields_for(i in want, cases[i].class_code)
        assert (f["geometry"] is not None) == ("location" in fields)
        assert ("grid_id" in props) == ("location" in fields)
        assert ("category" in props) == ("category" in fields)
        if i in want:
            assert (PHONE in props["description"]) == (not masked)
        else:
            assert "description" not in props
    # Filtering by place or category finds no case outside the scope whose class hides them.
    private = [i for i in ours if i not in want and scope.is_private(cases[i].class_code)]
    if private:
        xs = [cases[i].lon for i in ours]
        ys = [cases[i].lat for i in ours]
        boxed = (
            await anon.get(
                "/ogc/collections/cases/items",
                params={
                    "bbox": f"{min(xs) - 0.01},{min(ys) - 0.01},{max(xs) + 0.01},{max(ys) + 0.01}",
                    "datetime": "2001-01-01/2001-01-31",
                    "limit": 1000,
                },
                headers=headers,
            )
        ).json()["features"]
        assert not {f["id"] for f in boxed} & set(private)

    # The live stream: its fan-out (on the places the event recorded) and its replay.
    if who is not None:
        before = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM events"))).scalar_one()
        for i in ours:
            await emit(session, "case.return", i, {"case_id": i, "reason": f"请联系 {PHONE}"})
        await session.flush()
        rows = await conn.execute(
            text(
                f"SELECT {hub._COLUMNS} FROM events e LEFT JOIN cases c ON c.id = e.case_id "
                "AND c.district_id = e.district_id WHERE e.id > :before ORDER BY e.id"
            ),
            {"before": before},
        )
        events = [hub.to_event(r) for r in rows]
        assert {e.case_id for e in events} == set(ours)
        assert {e.case_id for e in events if mine.covers(e)} == want
        replayed, _ = await hub.replay(conn, mine, before)
        assert {e.case_id for e in replayed} == want
        for e in events:
            assert (PHONE in e.data_for(masked)) == (not masked)

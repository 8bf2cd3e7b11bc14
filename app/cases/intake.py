"""Case intake: the hot path. One statement finds the grid (with the boundary valid now), the
reporter's distance from their own grids, inserts the case, its first timeline entry and its
`case.reported` event (published by the relay once committed), and lists duplicate
suggestions. It runs on the raw asyncpg connection: through the ORM session the same work costs
several times the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from app.cases.schemas import CaseCreate
from app.cases.service import CASE_COLUMNS, CASE_FROM
from app.config import get_settings
from app.db import RawSql, RecordView
from app.errors import ApiError, not_found
from app.events import outbox
from app.geometry import parse_lonlat
from app.grids import lookup_index
from app.idempotency import CLAIM, Claim, Lapsed, lapse, no_claim, settle, store
from app.observability import metrics

Render = Callable[[Any, list[dict[str, Any]]], bytes]
"""Makes the response body from the case row and the duplicate suggestions."""

_INTAKE_TEXT = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
catg AS (SELECT code, duplicate_radius_m FROM categories WHERE code = :category AND active),
n AS (SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS id FROM catg),
claim AS ({claim}),
live AS NOT MATERIALIZED (
    SELECT b.id AS bid, b.grid_id, b.boundary FROM grid_boundaries b WHERE b.valid_to IS NULL
),
hit AS (
    SELECT l.bid, l.grid_id FROM live l JOIN grids g ON g.id = l.grid_id, p
    WHERE ST_Intersects(l.boundary, p.g) ORDER BY g.code LIMIT 1
),
near AS (
    SELECT k.grid_id, ST_Distance(k.boundary::geography, p.g::geography) AS d
    FROM (SELECT l.grid_id, l.boundary FROM live l
          WHERE NOT EXISTS (SELECT 1 FROM hit)
          ORDER BY l.boundary <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) LIMIT 8) k, p
    ORDER BY 2, 1 LIMIT 1
),
place AS (
    SELECT g.id AS grid_id, c.id AS community_id, s.id AS street_id, d.id AS district_id
    FROM grids g JOIN areas c ON c.id = g.community_id
    LEFT JOIN areas s ON s.id = c.parent_id LEFT JOIN areas d ON d.id = s.parent_id
    WHERE g.id = coalesce((SELECT grid_id FROM hit), (SELECT grid_id FROM near))
),
mine AS (
    SELECT min(ST_Distance(b.boundary::geography, p.g::geography)) AS d
    FROM posts po
    JOIN post_grids pg ON pg.post_id = po.id
    JOIN grid_boundaries b ON b.grid_id = pg.grid_id AND b.valid_to IS NULL, p
    WHERE po.user_id = :reporter AND po.role IN ('grid_worker', 'grid_leader')
      AND po.starts_on <= current_date AND (po.ends_on IS NULL OR po.ends_on >= current_date)
),
ins AS (
    INSERT INTO cases (
        id, number, category_code, title, description, location, input_crs, accuracy_m,
        address, building_id, occurred_at, urgency, channel, resident_name, resident_phone,
        reporter_id, grid_id, community_id, street_id, district_id, boundary_id, unlocated,
        nearest_grid_id, nearest_distance_m, off_patch_m)
    SELECT n.id,
           to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || lpad(n.id::text, 6, '0'),
           catg.code, :title, :description, p.g, :crs, :accuracy, :address, :building,
           coalesce(:occurred_at, now()), :urgency, :channel, :resident_name, :resident_phone,
           :reporter,
           CASE WHEN hit.grid_id IS NOT NULL THEN place.grid_id END,
           CASE WHEN hit.grid_id IS NOT NULL THEN place.community_id END,
           CASE WHEN hit.grid_id IS NOT NULL THEN place.street_id END,
           place.district_id,
           hit.bid,
           hit.grid_id IS NULL,
           CASE WHEN hit.grid_id IS NULL THEN place.grid_id END,
           (SELECT d FROM near),
           CASE WHEN mine.d > :off_patch_m THEN round(mine.d::numeric, 1) END
    FROM n CROSS JOIN catg CROSS JOIN p CROSS JOIN mine
    LEFT JOIN hit ON true LEFT JOIN place ON true
    WHERE CAST(:key AS text) IS NULL OR EXISTS (SELECT 1 FROM claim)
    RETURNING *
),
ev AS (
    INSERT INTO case_events (case_id, district_id, actor_id, action, to_status, note, detail)
    SELECT ins.id, ins.district_id, :reporter, 'reported', 'reported', :description,
           jsonb_build_object('channel', CAST(:channel AS text), 'unlocated', ins.unlocated,
                              'off_patch_m', ins.off_patch_m)
    FROM ins
    RETURNING id
),
changed AS (
    INSERT INTO case_changes (district_id, case_id) SELECT ins.district_id, ins.id FROM ins
),
queued AS (
    -- Complete (its places; a new case has no department): no trigger completes it at commit.
    INSERT INTO event_intents (type, case_id, district_id, grid_id, area_ids, payload)
    SELECT 'case.reported', ins.id, ins.district_id, ins.grid_id,
           array_remove(ARRAY[ins.community_id, ins.street_id, ins.district_id], NULL),
           jsonb_build_object('case_id', ins.id, 'number', ins.number, 'title', ins.title,
                              'category', ins.category_code, 'urgency', ins.urgency,
                              'unlocated', ins.unlocated, 'channel', ins.channel,
                              'to_status', 'reported')
    FROM ins
),
dups AS (
    SELECT c.id, c.number, c.title, c.status, c.reported_at,
           round(ST_Distance(c.location::geography, p.g::geography)::numeric, 1) AS distance_m
    FROM cases c, p, catg
    WHERE (CAST(:key AS text) IS NULL OR EXISTS (SELECT 1 FROM claim))  -- not for a replay
      AND c.category_code = catg.code
      -- Within the new case's district (the shard), never the new case itself (on Citus the
      -- CTEs run one after another, so this one sees the row `ins` wrote).
      AND c.district_id = {dup_district} AND c.id <> (SELECT id FROM n)
      AND c.status NOT IN ('closed', 'rejected')
      AND c.reported_at > now() - make_interval(days => :dup_days)
      AND ST_DWithin(c.location, p.g,
                     catg.duplicate_radius_m / 111000.0 / cos(radians(:lat)) * 1.2)
      AND ST_DWithin(c.location::geography, p.g::geography, catg.duplicate_radius_m)
    ORDER BY distance_m, c.id
    LIMIT :dup_max
)
SELECT {columns}, (SELECT id FROM ev) AS event_id,
       coalesce((SELECT json_agg(dups ORDER BY distance_m, id) FROM dups), '[]') AS duplicates
{joins}
"""


def _intake(dup_district: str) -> RawSql:
    return RawSql(
        _INTAKE_TEXT.format(
            claim=CLAIM.format(result_id="n.id", source="n"),
            columns=CASE_COLUMNS,
            joins=CASE_FROM.replace("FROM cases c", "FROM ins c", 1),
            dup_district=dup_district,
        )
    )


_INTAKE = _intake("(SELECT district_id FROM place)")
_INTAKE_HINTED = _intake(
    "CAST(:district AS bigint) AND CAST(:district AS bigint) = (SELECT district_id FROM place)"
)
"""The same statement when the process's lookup index already named the point's district
(`_statement`): the duplicate search's district is then a bind, so that Citus runs it on that
district's shard alone (with the district from the statement's own lookup it cannot prune, and
asked every shard of `cases`: 32 tasks per report). The second condition keeps the rule exact
when the index is a refresh behind a boundary change: a district that differs from the
statement's own finds no suggestions rather than another district's cases."""


def _statement(lon: float, lat: float) -> tuple[RawSql, dict[str, Any]]:
    """The intake statement for a point, with the binds only it needs."""
    hit = lookup_index.answer(lon, lat)
    if hit is None or hit.d_id is None:
        return _INTAKE, {}
    return _INTAKE_HINTED, {"district": hit.d_id}


_ONE = RawSql(f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.id = :id")


def _unknown_category(data: CaseCreate) -> ApiError:
    return ApiError(
        "validation_error",
        field="category",
        detail=f"事项类别不存在或已停用：{data.category}",
        detail_en=f"Unknown or retired category: {data.category}",
    )


def _params(
    data: CaseCreate, reporter_id: int, channel: str, claim: Claim | None
) -> tuple[RawSql, list[Any]]:
    """The intake statement for this report and its bind values."""
    s = get_settings()
    lon, lat = parse_lonlat(data.location.lon, data.location.lat, data.location.crs)
    stmt, hint = _statement(lon, lat)
    return stmt, stmt.args(
        {
            **hint,
            "lon": lon,
            "lat": lat,
            "category": data.category,
            "title": data.title,
            "description": data.description,
            "crs": data.location.crs.value,
            "accuracy": data.location.accuracy_m,
            "address": data.address,
            "building": data.building_id,
            "occurred_at": data.occurred_at,
            "urgency": data.urgency,
            "channel": channel,
            "resident_name": data.resident.name if data.resident else None,
            "resident_phone": data.resident.phone if data.resident else None,
            "reporter": reporter_id,
            "off_patch_m": s.off_patch_m,
            "dup_days": s.duplicate_days,
            "dup_max": s.duplicate_max,
            **(claim.params() if claim else no_claim(reporter_id)),
        }
    )


async def report(
    conn: asyncpg.Connection,
    data: CaseCreate,
    reporter_id: int,
    render: Render,
    claim: Claim | None = None,
    channel: str = "app",
) -> tuple[int, bytes]:
    """Report a case; `conn` is outside any transaction. Returns (status, response body).

    Fresh: one statement claims the key, inserts the case, its first step and its event and
    finds the duplicates (it commits on its own), then the response is stored for replays. A
    key already used answers from the key (replay, 409 or 422, see app.idempotency)."""
    stmt, args = _params(data, reporter_id, channel, claim)
    row = await conn.fetchrow(stmt.sql, *args)
    if row is not None:
        dups = row["duplicates"]
        try:
            payload = render(
                RecordView(row), dups if isinstance(dups, list) else orjson.loads(dups)
            )
        except BaseException:
            if claim is not None:
                await lapse(conn, claim)
            raise
        outbox.kick()  # the statement committed its `case.reported` intent
        if claim is not None:
            await store(conn, claim, 201, payload)
        metrics.case_reported(row["district_id"], channel)
        return 201, payload
    settled = await settle(conn, claim) if claim is not None else None
    if settled is None:
        raise _unknown_category(data)
    if isinstance(settled, Lapsed):  # created, but its answer was lost: answer it now
        assert claim is not None
        case = await conn.fetchrow(_ONE.sql, *_ONE.args({"id": settled.result_id}))
        if case is None:  # removed since (only test clean-ups remove cases)
            raise not_found("事件", "Case", settled.result_id)
        payload = render(RecordView(case), [])
        await store(conn, claim, 201, payload)
        return 201, payload
    return settled.status, settled.body


async def insert_case(
    conn: asyncpg.Connection, data: CaseCreate, reporter_id: int, channel: str = "app"
) -> tuple[Any, list[dict[str, Any]]]:
    """The same intake statement inside the caller's transaction, for doors that add their own
    records to the case before committing (Open311, the QR form). Returns the case row (as
    `service.CASE_COLUMNS` reads it) and the duplicate suggestions."""
    stmt, args = _params(data, reporter_id, channel, None)
    row = await conn.fetchrow(stmt.sql, *args)
    if row is None:
        raise _unknown_category(data)
    metrics.case_reported(row["district_id"], channel)
    dups = row["duplicates"]
    return RecordView(row), dups if isinstance(dups, list) else orjson.loads(dups)

"""Bug 6 (issue 16): one rule for times without an offset in the whole API: they mean
Asia/Shanghai time. `/api/v1/audit?since=` read them as UTC while `/api/v1/cases` read them as
Shanghai time; now every time query parameter has the kernel's one type (`app.schemas.LocalInstant`).
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any

import httpx
from pydantic.functional_validators import AfterValidator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.schemas import local_instant, parse_instant


async def _audit_row(conn: AsyncConnection, at: dt.datetime) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, detail) "
                    "VALUES (:at, 'tz-test', 'tz_test', '{}') RETURNING id"
                ),
                {"at": at},
            )
        ).scalar_one()
    )


async def test_audit_since_without_offset_is_shanghai_time(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    rid = await _audit_row(conn, local_instant(dt.datetime(2026, 3, 2, 10, 0)))

    async def ids(**params: str) -> list[int]:
        r = await client.get("/api/v1/audit", params={"action": "tz_test", **params})
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    # 09:30 in Shanghai is before the entry; read as UTC (17:30 in Shanghai) it was after it.
    assert rid in await ids(since="2026-03-02T09:30:00")
    assert rid not in await ids(since="2026-03-02T10:30:00")
    assert rid in await ids(until="2026-03-02T10:30:00")
    assert rid not in await ids(until="2026-03-02T09:30:00")
    # An explicit offset is kept as sent.
    assert rid in await ids(since="2026-03-02T01:30:00Z")
    assert rid not in await ids(since="2026-03-02T02:30:00Z")


async def _report(client: httpx.AsyncClient, conn: AsyncConnection) -> int:
    lon, lat = (
        await conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
                "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
                "WHERE g.code = '360602001001001' AND b.valid_to IS NULL) x"
            )
        )
    ).one()
    category = (
        await conn.execute(text("SELECT code FROM categories ORDER BY code LIMIT 1"))
    ).scalar_one()
    r = await client.post(
        "/api/v1/cases",
        json={
            "category": category,
            "title": "时间测试",
            "description": "楼道灯不亮",
            "location": {"lon": float(lon), "lat": float(lat), "accuracy_m": 8},
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_audit_and_cases_read_the_same_time_the_same_way(
    client: httpx.AsyncClient, conn: AsyncConnection
) -> None:
    case_id = await _report(client, conn)
    row = (
        await conn.execute(
            text(
                "SELECT id, reported_at AT TIME ZONE 'Asia/Shanghai' AS wall FROM cases "
                "WHERE id = :id"
            ),
            {"id": case_id},
        )
    ).one()
    wall: dt.datetime = row.wall
    rid = await _audit_row(conn, local_instant(wall))
    just_before = (wall - dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    just_after = (wall + dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    for since, expected in ((just_before, True), (just_after, False)):
        cases = await client.get("/api/v1/cases", params={"since": since, "limit": 200})
        assert cases.status_code == 200, cases.text
        audit = await client.get("/api/v1/audit", params={"since": since, "action": "tz_test"})
        assert audit.status_code == 200, audit.text
        assert (row.id in [c["id"] for c in cases.json()["items"]]) is expected
        assert (rid in [e["id"] for e in audit.json()["items"]]) is expected


def _has_rule(annotation: Any) -> bool:
    """Does the annotation carry the kernel's `local_instant` validator (at any depth)?"""
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, AfterValidator) and meta.func is local_instant:
            return True
    return any(_has_rule(a) for a in typing.get_args(annotation))


def _is_time(annotation: Any) -> bool:
    if annotation is dt.datetime:
        return True
    return any(_is_time(a) for a in typing.get_args(annotation))


def test_every_time_query_parameter_has_the_one_rule() -> None:
    from app.http import api_routes
    from app.main import app

    found, wrong = [], []
    for route in api_routes(app.routes):
        for f in route.dependant.query_params:
            annotation = f.field_info.annotation
            if not _is_time(annotation):
                continue
            found.append((route.path_format, f.name))
            if not _has_rule(annotation) and not any(
                isinstance(m, AfterValidator) and m.func is local_instant
                for m in f.field_info.metadata
            ):
                wrong.append((route.path_format, f.name))
    assert ("/api/v1/audit", "since") in found and ("/api/v1/cases", "since") in found
    assert not wrong, wrong


def test_the_text_parser_follows_the_same_rule() -> None:
    shanghai = local_instant(dt.datetime(2026, 3, 2, 9, 30))
    assert parse_instant("2026-03-02T09:30:00") == shanghai
    assert parse_instant("2026-03-02T01:30:00Z") == shanghai
    assert parse_instant("2026-03-02T09:30:00 08:00") == shanghai  # '+' read as a space
    assert shanghai.utcoffset() == dt.timedelta(hours=8)

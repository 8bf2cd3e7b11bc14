"""On a Citus cluster (`make test-citus`): two districts on two workers; a district's queue, a
case read and a loop action are router plans (EXPLAIN shows one task); the centre's figures
across districts are the sum of the districts'. Skipped unless WANGGE_CITUS_URL is set.

The statements checked are the ones the app runs: they are recorded while the API answers (a
listener on the test's connection), then EXPLAINed with the same parameters."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import scope
from app.demo.second_district import DISTRICT as OTHER_CODE
from tests.factories import category_code

pytestmark = pytest.mark.skipif(
    not os.environ.get("WANGGE_CITUS_URL"), reason="needs a Citus cluster (make test-citus)"
)
YUEHU_CODE = "360602000000"


@contextmanager
def recorded(conn: AsyncConnection) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def before(_c: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    sync = conn.sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", before)


def is_lookup(statement: str) -> bool:
    """`scope.district_of`'s statement, as the driver receives it."""
    return statement == scope._DISTRICT_OF.text.replace(":id", "$1")


async def tasks(conn: AsyncConnection, statement: str, params: Any) -> int:
    """How many tasks Citus plans for the statement (a router plan has one)."""
    async with conn.begin_nested() as sp:
        plan = "\n".join(r[0] for r in await conn.exec_driver_sql("EXPLAIN " + statement, params))
        await sp.rollback()
    counts = [int(n) for n in re.findall(r"Task Count: (\d+)", plan)]
    assert counts, plan
    return max(counts)


async def _district(conn: AsyncConnection, code: str) -> int:
    return (
        await conn.execute(text("SELECT id FROM areas WHERE code = :c"), {"c": code})
    ).scalar_one()


async def _worker_of(conn: AsyncConnection, district_id: int) -> str:
    return (
        await conn.execute(
            text(
                """
                SELECT n.nodename || ':' || n.nodeport FROM pg_dist_placement p
                JOIN pg_dist_node n ON n.groupid = p.groupid
                WHERE p.shardid = get_shard_id_for_distribution_column('cases', CAST(:d AS bigint))
                """
            ),
            {"d": district_id},
        )
    ).scalar_one()


async def _report(
    client: Any, conn: AsyncConnection, lon: float, lat: float, title: str
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/cases",
        json={
            "category": await category_code(conn),
            "title": title,
            "description": "路灯不亮",
            "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_the_two_districts_live_on_two_workers(conn: AsyncConnection) -> None:
    yuehu = await _district(conn, YUEHU_CODE)
    other = await _district(conn, OTHER_CODE)
    assert await _worker_of(conn, yuehu) != await _worker_of(conn, other)


async def test_queue_case_read_and_action_are_router_plans(
    client: Any, conn: AsyncConnection
) -> None:
    other = await _district(conn, OTHER_CODE)
    case = await _report(client, conn, 117.33, 28.08, "另一区的路灯")

    checked = 0
    with recorded(conn) as seen:
        r = await client.get("/api/v1/cases", params={"district_id": other})
        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()["items"]] == [case["id"]]
    queue = [(s, p) for s, p in seen if "FROM cases c" in s and "ORDER BY c.reported_at" in s]
    assert queue, seen
    for s, p in queue:
        assert await tasks(conn, s, p) == 1, s
        checked += 1

    with recorded(conn) as seen:
        r = await client.get(f"/api/v1/cases/{case['id']}")
        assert r.status_code == 200, r.text
    etag = r.headers["etag"]
    # The one statement of the request that names no district: the case's district, by id.
    lookups = [s for s, _ in seen if is_lookup(s)]
    assert len(lookups) == 1
    reads = [
        (s, p)
        for s, p in seen
        if re.search(r"\b(cases|case_events|attachments|case_assignments)\b", s)
        and not is_lookup(s)
    ]
    fanned = [(s, n) for s, p in reads if (n := await tasks(conn, s, p)) != 1]
    assert reads and not fanned, fanned
    checked += len(reads)

    with recorded(conn) as seen:
        r = await client.post(
            f"/api/v1/cases/{case['id']}/actions/register",
            json={"note": "立案"},
            headers={"If-Match": etag},
        )
        assert r.status_code in (200, 201), r.text
    writes = [
        (s, p) for s, p in seen if re.match(r"\s*(UPDATE|INSERT INTO) (cases|case_events)\b", s)
    ]
    assert writes, seen
    for s, p in writes:
        assert await tasks(conn, s, p) == 1, s
        checked += 1
    assert checked >= 3


async def test_the_centres_figures_are_the_sum_of_the_districts(
    client: Any, conn: AsyncConnection
) -> None:
    yuehu = await _district(conn, YUEHU_CODE)
    other = await _district(conn, OTHER_CODE)
    await _report(client, conn, 117.34, 28.09, "另一区的井盖")
    count = text("SELECT count(*) FROM cases WHERE district_id = :d")
    each = [(await conn.execute(count, {"d": d})).scalar_one() for d in (yuehu, other)]
    total = (await conn.execute(text("SELECT count(*) FROM cases"))).scalar_one()
    assert each[1] >= 1
    assert total == sum(each)
    # The same through the API: the centre's list across districts has both districts' cases.
    listed = 0
    cursor = None
    while True:
        r = await client.get(
            "/api/v1/cases", params={"limit": 200, **({"cursor": cursor} if cursor else {})}
        )
        assert r.status_code == 200, r.text
        listed += len(r.json()["items"])
        cursor = r.json().get("next_cursor")
        if not cursor:
            break
    assert listed == total
    # And the evaluation's figures (a cross-district read of the facts and their rollups): the
    # centre's received cases over a fixed period are the sum of every street's, the streets of
    # both districts.
    period = {
        "period": "custom",
        "since": "2024-01-01T00:00:00+08:00",
        "until": "2027-01-01T00:00:00+08:00",
    }
    r = await client.get("/api/v1/stats/channels", params=period)
    assert r.status_code == 200, r.text
    centre = r.json()["total"]
    r = await client.get("/api/v1/stats/indicators", params={"unit": "street", **period})
    assert r.status_code == 200, r.text
    streets = r.json()["items"]
    assert centre >= 1
    assert centre == sum(row["figures"]["received"]["value"] for row in streets)

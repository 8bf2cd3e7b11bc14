"""Figures for the map and the intake: received cases by grid and category (hot spots) and by
intake channel, over the cases the caller may list (`app.stats.scoping`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.policy import Principal
from app.errors import ApiError
from app.i18n import Lang, label
from app.stats.definitions import UNIT_COLUMN
from app.stats.periods import Period
from app.stats.scoping import scope_of
from app.stats.service import UNIT_PARAM, _months, cases_url

CHANNEL_LABELS: dict[str, tuple[str, str]] = {
    "app": ("网格员手机上报", "grid worker's app"),
    "hotline": ("热线电话", "hotline"),
    "qr": ("扫码上报", "QR code"),
    "department": ("部门移交", "from a department"),
    "console": ("中心坐席录入", "entered at the centre"),
}


async def hotspots(
    conn: AsyncConnection,
    who: Principal,
    period: Period,
    lang: Lang,
    categories: list[str] | None = None,
    street_id: int | None = None,
    community_id: int | None = None,
) -> dict[str, Any]:
    """Received cases by grid and category over the period (the map's choropleth)."""
    scope = await scope_of(conn, who)
    vis, params = scope.visibility()
    where = [vis, "c.reported_at >= :since AND c.reported_at < :until", "c.grid_id IS NOT NULL"]
    params.update(since=period.start, until=period.end)
    if categories:
        where.append("c.category_code = ANY(:cats)")
        params["cats"] = categories
    if street_id is not None:
        where.append("c.street_id = :street_id")
        params["street_id"] = street_id
    if community_id is not None:
        where.append("c.community_id = :community_id")
        params["community_id"] = community_id
    cond = " AND ".join(where)
    if scope.everything or not scope.departments:
        # The monthly hot-spot rollup for whole months, the facts for the partial ones.
        m_from, m_to, e1, e2 = _months(period)
        params.update(m_from=m_from, m_to=m_to, e1=e1, e2=e2)
        edge = cond.replace(
            "c.reported_at >= :since AND c.reported_at < :until",
            "((c.reported_at >= :since AND c.reported_at < :e1) "
            "OR (c.reported_at >= :e2 AND c.reported_at < :until))",
        )
        sql = (
            "SELECT grid_id, category_code, sum(n) AS n FROM ("
            "SELECT c.grid_id, c.category_code, sum(c.received) AS n "
            "FROM stats_hotspot_monthly c WHERE c.month >= :m_from AND c.month < :m_to AND "
            + cond.replace("c.reported_at >= :since AND c.reported_at < :until", "true")
            + " GROUP BY 1, 2 UNION ALL SELECT c.grid_id, c.category_code, count(*) "
            f"FROM stats_case_facts c WHERE {edge} GROUP BY 1, 2) u "
            "GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2"
        )
    else:
        sql = (
            "SELECT c.grid_id, c.category_code, count(*) AS n FROM stats_case_facts c "
            f"WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2"
        )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for r in await conn.execute(text(sql), params):
        counts[r.grid_id][r.category_code] = int(r.n)
    grids = {
        r.id: r
        for r in await conn.execute(
            text(
                "SELECT id, code, name, community_id, coalesce(households, 0) AS households "
                "FROM grids WHERE id = ANY(:ids)"
            ),
            {"ids": list(counts)},
        )
    }
    cat_names = {
        r.code: (r.name, r.name_en)
        for r in await conn.execute(text("SELECT code, name, name_en FROM categories"))
    }
    items = []
    by_category: dict[str, int] = defaultdict(int)
    for gid, by_cat in counts.items():
        g = grids[gid]
        total = sum(by_cat.values())
        for code, n in by_cat.items():
            by_category[code] += n
        items.append(
            {
                "grid": {"id": gid, "code": g.code, "name": g.name},
                "community_id": g.community_id,
                "total": total,
                "households": g.households,
                "per_1000_households": round(total * 1000 / g.households, 2)
                if g.households
                else None,
                "counts": dict(sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0]))),
                "cases_url": cases_url(period, "received", grid_id=gid, category=categories),
            }
        )
    items.sort(key=lambda x: (-x["total"], x["grid"]["code"]))
    return {
        "period": period.out(),
        "total": sum(i["total"] for i in items),
        "max_total": max((i["total"] for i in items), default=0),
        "categories": [
            {
                "code": code,
                "name": cat_names.get(code, (code, code))[1 if lang == "en" else 0],
                "count": n,
                "cases_url": cases_url(
                    period,
                    "received",
                    street_id=street_id,
                    community_id=community_id,
                    category=code,
                ),
            }
            for code, n in sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "items": items,
    }


async def channels(
    conn: AsyncConnection,
    who: Principal,
    period: Period,
    lang: Lang,
    unit: str | None = None,
    unit_id: int | None = None,
) -> dict[str, Any]:
    """Received cases by intake channel (`cases.channel`)."""
    scope = await scope_of(conn, who)
    vis, params = scope.visibility()
    where = [vis, "c.reported_at >= :since", "c.reported_at < :until"]
    params.update(since=period.start, until=period.end)
    link: dict[str, Any] = {}
    if unit is not None and unit_id is not None:
        if unit == "department":
            raise ApiError(
                "validation_error",
                field="unit",
                detail="按渠道统计只支持区域和网格员",
                detail_en="Channels are counted for areas and grid workers",
            )
        where.append(f"c.{UNIT_COLUMN[unit]} = :unit_id")
        params["unit_id"] = unit_id
        link[UNIT_PARAM[unit]] = unit_id
    sql = (
        "SELECT c.channel, count(*) AS n FROM stats_case_facts c "
        f"WHERE {' AND '.join(where)} GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    items = [
        {
            "channel": r.channel,
            "label": label(CHANNEL_LABELS, r.channel, lang)
            if r.channel in CHANNEL_LABELS
            else r.channel,
            "count": int(r.n),
            "cases_url": cases_url(period, "received", channel=r.channel, **link),
        }
        for r in await conn.execute(text(sql), params)
    ]
    return {"period": period.out(), "total": sum(i["count"] for i in items), "items": items}

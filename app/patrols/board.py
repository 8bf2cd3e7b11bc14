"""The community's weekly board (周工作看板, issue 19 "the paperwork, done"): for an area and an ISO
week (Monday to Sunday, Asia/Shanghai), per grid its coverage by patrol (`coverage.coverage`), per
worker the patrol hours against the standard summed over the grids and their personal tasks, and
the missed check-ins of the area's points (`checkins.missed`). Nothing is stored: each figure is
the one the other endpoints give for the same period."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import below_cte
from app.config import get_settings
from app.patrols import checkins, coverage, sheets
from app.schemas import SHANGHAI

_GRIDS = text(
    """
    WITH """
    + below_cte()
    + """
    SELECT g.id AS grid_id, g.code, g.name, coalesce(s.parent_id, s.id, c.id) AS district_id
    FROM grids g JOIN areas c ON c.id = g.community_id LEFT JOIN areas s ON s.id = c.parent_id
    WHERE g.community_id IN (SELECT id FROM below) AND g.deleted_at IS NULL
    ORDER BY g.code
    """
)

_TASKS = text(
    """
    SELECT t.worker_id, u.display_name AS worker,
           count(*) FILTER (WHERE t.state IN ('open', 'accepted')) AS open,
           count(*) FILTER (WHERE t.state IN ('open', 'accepted') AND t.due_at < :now) AS overdue,
           count(*) FILTER (WHERE t.state = 'done' AND t.finished_at >= :lo
                            AND t.finished_at < :hi) AS done,
           count(*) FILTER (WHERE t.state = 'done' AND t.finished_at >= :lo
                            AND t.finished_at < :hi AND t.finished_at <= t.due_at) AS on_time
    FROM worker_tasks t JOIN users u ON u.id = t.worker_id
    WHERE t.district_id = :d AND t.grid_id = ANY(:grids)
    GROUP BY t.worker_id, u.display_name
    """
)


def week_of(day: date) -> tuple[date, str]:
    """The Monday of the ISO week holding `day`, and the week's name (2026-W49)."""
    y, w, _ = day.isocalendar()
    return date.fromisocalendar(y, w, 1), f"{y}-W{w:02d}"


async def weekly(session: AsyncSession, area_id: int, monday: date) -> dict[str, Any]:
    s = get_settings()
    lo = datetime.combine(monday, time(0), SHANGHAI)
    hi = lo + timedelta(days=7)
    now = datetime.now(SHANGHAI)
    grids = []
    workers: dict[int, dict[str, Any]] = {}
    grid_rows = (await session.execute(_GRIDS, {"area": area_id})).all()
    district = grid_rows[0].district_id if grid_rows else None
    covs = await coverage.coverage_of(session, list(grid_rows), lo, hi, s.coverage_stale_days)
    for g in grid_rows:
        cov = covs[g.grid_id]
        grids.append({**cov, "code": g.code, "name": g.name})
        for w in cov["workers"]:
            one = workers.setdefault(
                w["worker_id"],
                {"worker_id": w["worker_id"], "worker": w["worker"], "hours": 0.0},
            )
            one["hours"] += float(w["hours"])
    tasks: dict[int, Any] = {}
    if district is not None:
        params = {"d": district, "grids": [g["grid_id"] for g in grids], "now": now}
        for r in await session.execute(_TASKS, {**params, "lo": lo, "hi": hi}):
            tasks[r.worker_id] = r
            workers.setdefault(
                r.worker_id, {"worker_id": r.worker_id, "worker": r.worker, "hours": 0.0}
            )
    basis = (
        await coverage.standards(session, district, sorted(workers), lo, hi)
        if district is not None
        else {}
    )
    rows = []
    for w in sorted(workers.values(), key=lambda x: (-x["hours"], x["worker_id"])):
        t = tasks.get(w["worker_id"])
        kind, on = basis.get(w["worker_id"], ("working_days", []))
        standard = s.patrol_hours_per_workday * len(on)
        rows.append(
            {
                **w,
                "hours": round(w["hours"], 2),
                "standard_basis": kind,
                "standard_hours": standard,
                "met": w["hours"] >= standard,
                "open_tasks": int(t.open) if t else 0,
                "overdue_tasks": int(t.overdue) if t else 0,
                "done_tasks": int(t.done) if t else 0,
                "done_on_time": int(t.on_time) if t else 0,
            }
        )
    missed = await checkins.missed(session, area_id, monday, monday + timedelta(days=6))
    return {
        "area_id": area_id,
        "week": week_of(monday)[1],
        "since": monday,
        "until": monday + timedelta(days=6),
        "grids": grids,
        "workers": rows,
        "checkins": {"area_id": area_id, **missed},
        "open_tasks": sum(r["open_tasks"] for r in rows),
        "overdue_tasks": sum(r["overdue_tasks"] for r in rows),
    }


_BASIS = {"duty_roster": "排班", "working_days": "工作日"}


def _sheets(b: dict[str, Any]) -> list[sheets.Sheet]:
    workers = sheets.Sheet(
        "网格员",
        [
            "网格员",
            "巡查时长（小时）",
            "标准时长（小时）",
            "标准依据",
            "达标",
            "未完成任务",
            "逾期任务",
            "本周完成",
            "按期完成",
        ],
        [
            [
                w["worker"],
                w["hours"],
                w["standard_hours"],
                _BASIS[w["standard_basis"]],
                w["met"],
                w["open_tasks"],
                w["overdue_tasks"],
                w["done_tasks"],
                w["done_on_time"],
            ]
            for w in b["workers"]
        ],
        [
            "合计",
            round(sum(w["hours"] for w in b["workers"]), 2),
            None,
            None,
            None,
            b["open_tasks"],
            b["overdue_tasks"],
            sum(w["done_tasks"] for w in b["workers"]),
            sum(w["done_on_time"] for w in b["workers"]),
        ],
    )
    grids = sheets.Sheet(
        "网格覆盖",
        [
            "网格",
            "网格编码",
            "网格单元数",
            "已巡单元",
            "覆盖率",
            "久未巡查单元",
            "巡查次数",
            "巡查里程（公里）",
        ],
        [
            [
                g["name"],
                g["code"],
                g["cells"],
                g["visited"],
                g["share"],
                g["stale"],
                g["patrols"],
                round(g["distance_m"] / 1000, 2),
            ]
            for g in b["grids"]
        ],
    )
    chk = b["checkins"]
    names = {g["grid_id"]: g["name"] for g in b["grids"]}
    missed = sheets.Sheet(
        "漏打卡",
        ["打卡点", "网格", "周期", "应打卡", "已打卡"],
        [
            [
                m["checkpoint"],
                names.get(m["grid_id"], m["grid_id"]),
                m["period"],
                m["expected"],
                m["done"],
            ]
            for m in chk["missed"]
        ],
        note=f"应打卡 {chk['expected']} 次，已打卡 {chk['done']} 次"
        + (f"（{chk['rate']:.0%}）" if chk["rate"] is not None else ""),
    )
    return [workers, grids, missed]


def title(b: dict[str, Any], area: str) -> str:
    return f"{area} 周工作看板 {b['week']}"


def to_html(b: dict[str, Any], area: str) -> str:
    return sheets.to_html(title(b, area), f"{b['since']} 至 {b['until']}", _sheets(b))


def to_xlsx(b: dict[str, Any], area: str) -> bytes:
    return sheets.to_xlsx(title(b, area), _sheets(b))

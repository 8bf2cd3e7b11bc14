"""The worker's work log (工作日志), made from what they did: patrols, check-ins, visits, the
cases they reported and their personal tasks, per day, for one day or one month. The same figures as JSON, printable HTML
and XLSX (Chinese headers), so nobody types them again (基层减负)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.patrols import sheets
from app.schemas import SHANGHAI

COLUMNS: tuple[tuple[str, str], ...] = (
    ("day", "日期"),
    ("patrols", "巡查次数"),
    ("patrol_hours", "巡查时长（小时）"),
    ("distance_km", "巡查里程（公里）"),
    ("checkins", "打卡次数"),
    ("checkins_accepted", "有效打卡"),
    ("visits", "走访户次"),
    ("cases", "上报事件"),
    ("tasks_received", "收到任务"),
    ("tasks_done", "完成任务"),
    ("tasks_on_time", "按期完成"),
)

_DAYS = text(
    """
    WITH p AS (
        SELECT worker_id AS w, (started_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               count(*) AS patrols,
               sum(greatest(extract(epoch FROM coalesce(ended_at, now()) - started_at) - paused_s
                            - coalesce(extract(epoch FROM now() - paused_at), 0), 0)) AS seconds,
               sum(distance_m) AS metres
        FROM patrols WHERE worker_id = ANY(CAST(:ws AS bigint[]))
          AND started_at >= :lo AND started_at < :hi GROUP BY 1, 2
    ), k AS (
        SELECT worker_id AS w, (at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS n,
               count(*) FILTER (WHERE accepted) AS ok
        FROM checkins WHERE worker_id = ANY(CAST(:ws AS bigint[])) AND at >= :lo AND at < :hi
        GROUP BY 1, 2
    ), v AS (
        SELECT worker_id AS w, (at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS n
        FROM visits WHERE worker_id = ANY(CAST(:ws AS bigint[])) AND at >= :lo AND at < :hi
        GROUP BY 1, 2
    ), c AS (
        SELECT reporter_id AS w, (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               count(*) AS n
        FROM cases WHERE reporter_id = ANY(CAST(:ws AS bigint[]))
          AND reported_at >= :lo AND reported_at < :hi GROUP BY 1, 2
    ), tr AS (
        SELECT worker_id AS w, (starts_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               count(*) AS n
        FROM worker_tasks WHERE worker_id = ANY(CAST(:ws AS bigint[]))
          AND starts_at >= :lo AND starts_at < :hi GROUP BY 1, 2
    ), td AS (
        SELECT worker_id AS w, (finished_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               count(*) AS n, count(*) FILTER (WHERE finished_at <= due_at) AS on_time
        FROM worker_tasks WHERE worker_id = ANY(CAST(:ws AS bigint[])) AND state = 'done'
          AND finished_at >= :lo AND finished_at < :hi GROUP BY 1, 2
    )
    SELECT d.w AS worker_id, d.day, coalesce(p.patrols, 0) AS patrols,
           coalesce(p.seconds, 0) AS seconds,
           coalesce(p.metres, 0) AS metres, coalesce(k.n, 0) AS checkins,
           coalesce(k.ok, 0) AS checkins_accepted, coalesce(v.n, 0) AS visits,
           coalesce(c.n, 0) AS cases, coalesce(tr.n, 0) AS tasks_received,
           coalesce(td.n, 0) AS tasks_done, coalesce(td.on_time, 0) AS tasks_on_time
    FROM (SELECT w, CAST(g AS date) AS day
          FROM unnest(CAST(:ws AS bigint[])) w,
               generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') g) d
    LEFT JOIN p USING (w, day) LEFT JOIN k USING (w, day)
    LEFT JOIN v USING (w, day) LEFT JOIN c USING (w, day)
    LEFT JOIN tr USING (w, day) LEFT JOIN td USING (w, day)
    ORDER BY d.w, d.day
    """
)


async def name_of(session: AsyncSession, worker_id: int) -> str | None:
    name = (
        await session.execute(
            text("SELECT display_name FROM users WHERE id = :id"), {"id": worker_id}
        )
    ).scalar()
    return None if name is None else str(name)


def period(day: date, span: str) -> tuple[date, date]:
    if span == "day":
        return day, day
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


async def worklog(
    session: AsyncSession, worker_id: int, name: str, day: date, span: str
) -> dict[str, Any]:
    first, last = period(day, span)
    return {"span": span, **await between(session, worker_id, name, first, last)}


async def between(
    session: AsyncSession, worker_id: int, name: str, first: date, last: date
) -> dict[str, Any]:
    """The log of the days `first` to `last` (Shanghai dates, both included): the one source of
    a worker's daily figures (the work log, the weekly board's hours, `/stats/fieldwork`)."""
    return (await between_many(session, {worker_id: name}, first, last))[worker_id]


async def between_many(
    session: AsyncSession, workers: dict[int, str], first: date, last: date
) -> dict[int, dict[str, Any]]:
    """`between` for many workers (id → name) in one statement."""
    lo = datetime.combine(first, datetime.min.time(), SHANGHAI)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), SHANGHAI)
    days: dict[int, list[dict[str, Any]]] = {w: [] for w in workers}
    rows = await session.execute(
        _DAYS, {"ws": sorted(workers), "lo": lo, "hi": hi, "first": first, "last": last}
    )
    for r in rows:
        days[r.worker_id].append(
            {
                "day": r.day.isoformat(),
                "patrols": int(r.patrols),
                "patrol_hours": round(float(r.seconds) / 3600, 2),
                "distance_km": round(float(r.metres) / 1000, 2),
                "checkins": int(r.checkins),
                "checkins_accepted": int(r.checkins_accepted),
                "visits": int(r.visits),
                "cases": int(r.cases),
                "tasks_received": int(r.tasks_received),
                "tasks_done": int(r.tasks_done),
                "tasks_on_time": int(r.tasks_on_time),
            }
        )
    out = {}
    for w, name in workers.items():
        mine = days[w]
        total = {
            k: round(sum(d[k] for d in mine), 2)
            if k in ("patrol_hours", "distance_km")
            else sum(d[k] for d in mine)
            for k, _ in COLUMNS[1:]
        }
        out[w] = {
            "worker_id": w,
            "worker": name,
            "first": first.isoformat(),
            "last": last.isoformat(),
            "days": mine,
            "total": total,
        }
    return out


def _title(log: dict[str, Any]) -> str:
    when = log["first"] if log["span"] == "day" else log["first"][:7]
    return f"{log['worker']} 工作日志 {when}"


def _sheet(log: dict[str, Any]) -> sheets.Sheet:
    return sheets.Sheet(
        "工作日志",
        [h for _, h in COLUMNS],
        [[d[k] for k, _ in COLUMNS] for d in log["days"]],
        ["合计", *[log["total"][k] for k, _ in COLUMNS[1:]]],
    )


def to_html(log: dict[str, Any]) -> str:
    return sheets.to_html(_title(log), f"{log['first']} 至 {log['last']}", [_sheet(log)])


def to_xlsx(log: dict[str, Any]) -> bytes:
    return sheets.to_xlsx(_title(log), [_sheet(log)])

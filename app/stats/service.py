"""Evaluation figures (考评): indicators per unit and period, ratings and rankings, hot spots,
cases by channel. Every figure is one SQL aggregate over the fact tables (kept exact by triggers,
migration 0007), restricted to the cases the caller may list, and carries the link to those cases
(`GET /api/v1/cases` with the same filters plus `indicator=`)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.policy import Principal
from app.i18n import Lang, label
from app.schemas import SHANGHAI
from app.stats.definitions import (
    CASE_DURATIONS,
    CASE_OPEN,
    COUNT_LABELS,
    DEPT_DURATIONS,
    DEPT_OPEN,
    DYNAMIC,
    MEASURES,
    RATES,
    RATING_LABELS,
    UNIT_COLUMN,
    UNIT_LABELS,
    Duration,
    condition,
    dynamic_part,
    static_part,
)
from app.stats.periods import Period
from app.stats.scoping import Scope, scope_of

CASES_URL = "/api/v1/cases"
UNIT_PARAM = {
    "district": "district_id",
    "street": "street_id",
    "community": "community_id",
    "grid": "grid_id",
    "worker": "reporter_id",
    "department": "department_id",
}

# --- thresholds ---------------------------------------------------------------------------------

DEFAULT_THRESHOLDS: dict[str, Any] = {
    "excellent": 90.0,
    "qualified": 75.0,
    "min_cases": 5,
    "weights": {
        "sign_in_on_time_rate": 20.0,
        "handled_on_time_rate": 30.0,
        "rework_rate": 10.0,
        "closure_rate": 20.0,
        "satisfaction_rate": 20.0,
    },
}


async def thresholds(conn: AsyncConnection) -> dict[str, Any]:
    row = (await conn.execute(text("SELECT config FROM stats_thresholds"))).scalar()
    return {**DEFAULT_THRESHOLDS, **(row or {})}


async def save_thresholds(conn: AsyncConnection, config: dict[str, Any], who: Principal) -> None:
    await conn.execute(
        text(
            "INSERT INTO stats_thresholds (config, updated_by) VALUES (CAST(:c AS jsonb), :u) "
            "ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config, "
            "updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at"
        ),
        {"c": orjson.dumps(config).decode(), "u": who.user_id},
    )


def score_of(rates: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """100 × the weighted mean of the rates that have a value (rework and returns as 1 - rate)."""
    total = weight = 0.0
    for r in RATES:
        w = float(weights.get(r.name, 0) or 0)
        v = rates.get(r.name)
        if w <= 0 or v is None:
            continue
        total += w * ((1 - v) if r.inverse else v)
        weight += w
    return round(100 * total / weight, 2) if weight else None


def rating_of(score: float | None, received: int, cfg: dict[str, Any]) -> str:
    if score is None or received < int(cfg["min_cases"]):
        return "not_rated"
    if score >= float(cfg["excellent"]):
        return "excellent"
    if score >= float(cfg["qualified"]):
        return "qualified"
    return "unqualified"


# --- links ----------------------------------------------------------------------------------------


def cases_url(period: Period, measure: str, **filters: Any) -> str:
    """The case list behind a figure: the same filters, plus `indicator`."""
    q = "&".join(
        f"{k}={quote(str(x), safe='')}"
        for k, v in filters.items()
        if v is not None
        for x in (v if isinstance(v, list) else [v])
    )
    return f"{_url_base(period.start, period.end)}{q}&indicator={measure}"


@lru_cache(maxsize=64)
def _url_base(start: datetime, end: datetime) -> str:
    return f"{CASES_URL}?{urlencode({'since': start.isoformat(), 'until': end.isoformat()})}&"


# --- indicators -----------------------------------------------------------------------------------


def durations_for(unit: str) -> tuple[Duration, ...]:
    return DEPT_DURATIONS if unit == "department" else CASE_DURATIONS


def aggregate_sql(unit: str, where: str, raw: bool = False) -> str:
    """The straightforward statement behind a table of indicators: every count, duration sum and
    p90 per unit over the fact rows of the period. `raw`: over the views that compute the facts
    from the raw tables (a recomputation from scratch: the exactness test and the benchmark's
    baseline); else over the fact tables (callers whose scope the rollups cannot express)."""
    dept = unit == "department"
    col = UNIT_COLUMN[unit]
    table = "stats_dept_facts" if dept else "stats_case_facts"
    if raw:
        table += "_v"
    parts = [f"count(*) FILTER (WHERE {condition(m, 'c', dept)}) AS {m}" for m in MEASURES]
    for d in durations_for(unit):
        parts.append(f"count(c.{d.column}) AS {d.column}_n")
        parts.append(f"coalesce(sum(c.{d.column}::numeric), 0) AS {d.column}_sum")
        parts.append(f"percentile_cont(0.9) WITHIN GROUP (ORDER BY c.{d.column}) AS {d.name}_p90")
    return (
        f"SELECT c.{col} AS unit_id, {', '.join(parts)} FROM {table} c "
        f"WHERE c.reported_at >= :since AND c.reported_at < :until AND c.{col} IS NOT NULL "
        f"AND {where} GROUP BY c.{col}"
    )


def rollup_sql(unit: str, where: str) -> str:
    """The same figures from the monthly rollup (whole months of the period), the fact rows of
    the partial months at either end, and the clock's part over the facts with a running
    deadline. Every count is exact: the three parts never overlap."""
    dept = unit == "department"
    col = UNIT_COLUMN[unit]
    facts = "stats_dept_facts" if dept else "stats_case_facts"
    roll = "stats_dept_monthly" if dept else "stats_case_monthly"
    opened = (DEPT_OPEN if dept else CASE_OPEN).format(t="c")
    names = list(MEASURES)
    for d in durations_for(unit):
        names += [f"{d.column}_n", f"{d.column}_sum"]
    roll_q = (
        f"SELECT c.{col} AS unit_id, {', '.join(f'sum(c.{n}) AS {n}' for n in names)} "
        f"FROM {roll} c WHERE c.month >= :m_from AND c.month < :m_to AND c.{col} IS NOT NULL "
        f"AND {where} GROUP BY 1"
    )
    edge = [f"count(*) FILTER (WHERE {static_part(m, 'c', dept)})" for m in MEASURES]
    live = [
        f"count(*) FILTER (WHERE {dynamic_part(m, 'c', dept)})" if m in DYNAMIC else "0"
        for m in MEASURES
    ]
    for d in durations_for(unit):
        edge += [f"count(c.{d.column})", f"coalesce(sum(c.{d.column}::numeric), 0)"]
        live += ["0", "0"]
    edge_q = (
        f"SELECT c.{col}, {', '.join(edge)} FROM {facts} c "
        "WHERE ((c.reported_at >= :since AND c.reported_at < :e1) "
        "OR (c.reported_at >= :e2 AND c.reported_at < :until)) "
        f"AND c.{col} IS NOT NULL AND {where} GROUP BY 1"
    )
    live_q = (
        f"SELECT c.{col}, {', '.join(live)} FROM {facts} c "
        f"WHERE {opened} AND c.reported_at >= :since AND c.reported_at < :until "
        f"AND c.{col} IS NOT NULL AND {where} GROUP BY 1"
    )
    return (
        f"SELECT unit_id, {', '.join(f'sum({n}) AS {n}' for n in names)} "
        f"FROM ({roll_q} UNION ALL {edge_q} UNION ALL {live_q}) u GROUP BY unit_id"
    )


def _months(period: Period) -> tuple[date, date, datetime, datetime]:
    """The whole months inside the period [m_from, m_to) and the edges' bounds e1, e2."""
    start, end = period.start.astimezone(SHANGHAI), period.end.astimezone(SHANGHAI)
    m_from = start.date().replace(day=1)
    if start != datetime(m_from.year, m_from.month, 1, tzinfo=SHANGHAI):
        m_from = (m_from + timedelta(days=32)).replace(day=1)
    m_to = end.date().replace(day=1)
    if m_from >= m_to:
        return m_from, m_from, period.end, period.end
    return (
        m_from,
        m_to,
        datetime(m_from.year, m_from.month, 1, tzinfo=SHANGHAI),
        datetime(m_to.year, m_to.month, 1, tzinfo=SHANGHAI),
    )


def percentile_sql(unit: str, column: str, where: str, units: int) -> str:
    """For each of `units` units (binds `pid_<i>`, `poff_<i>`), the two values around the 90th
    percentile, walking down the (unit, value) index from the largest: OFFSET counts from the
    top, so about a tenth of the rows is read. One uncorrelated subquery per unit, joined by
    UNION ALL: Citus plans each on its own (it refuses the correlated form over `unnest`)."""
    dept = unit == "department"
    col = UNIT_COLUMN[unit]
    facts = "stats_dept_facts" if dept else "stats_case_facts"
    return " UNION ALL ".join(
        f"SELECT CAST(:pid_{i} AS bigint) AS id, array(SELECT c.{column} FROM {facts} c "
        f"WHERE c.{col} = :pid_{i} AND c.{column} IS NOT NULL "
        f"AND c.reported_at >= :since AND c.reported_at < :until AND {where} "
        f"ORDER BY c.{column} DESC OFFSET :poff_{i} LIMIT 2) AS v"
        for i in range(units)
    )


def percentile_cont(n: int, top: list[float], q: float = 0.9) -> float | None:
    """PostgreSQL's percentile_cont from the values at the two ranks around it (`top`: fetched
    in descending order from offset n - 1 - ceil(q (n - 1)))."""
    if n == 0 or not top:
        return None
    pos = q * (n - 1)
    first, second = math.floor(pos), math.ceil(pos)
    hi = top[0]
    lo = top[1] if second != first and len(top) > 1 else hi
    return lo + (hi - lo) * (pos - first)


async def _names(conn: AsyncConnection, unit: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    sql = {
        "department": "SELECT id, code, name FROM departments WHERE id = ANY(:ids)",
        "grid": "SELECT id, code, name FROM grids WHERE id = ANY(:ids)",
        "worker": "SELECT id, username AS code, display_name AS name FROM users "
        "WHERE id = ANY(:ids)",
    }.get(unit, "SELECT id, code, name FROM areas WHERE id = ANY(:ids)")
    return {
        r.id: {"id": r.id, "code": r.code, "name": r.name}
        for r in await conn.execute(text(sql), {"ids": ids})
    }


_HOUSEHOLDS = text(
    """
    SELECT g.id AS grid_id, g.community_id, a.parent_id AS street_id, s.parent_id AS district_id,
           coalesce(g.households, 0) AS households
    FROM grids g JOIN areas a ON a.id = g.community_id LEFT JOIN areas s ON s.id = a.parent_id
    WHERE g.deleted_at IS NULL
    """
)


async def households(conn: AsyncConnection, unit: str) -> dict[int, int]:
    if unit not in ("district", "street", "community", "grid"):
        return {}
    col = UNIT_COLUMN[unit]
    out: dict[int, int] = defaultdict(int)
    for r in await conn.execute(_HOUSEHOLDS):
        key = getattr(r, col)
        if key is not None:
            out[key] += r.households
    return out


def _round(v: Any, n: int = 2) -> float | None:
    return None if v is None else round(float(v), n)


async def indicator_rows(
    conn: AsyncConnection,
    who: Principal,
    unit: str,
    period: Period,
    lang: Lang,
    unit_id: int | None = None,
    cfg: dict[str, Any] | None = None,
    scope: Scope | None = None,
    raw: bool = False,
) -> list[dict[str, Any]]:
    """One row per unit with cases in the period, in the caller's scope (best score first).
    From the monthly rollups when the caller's scope is a matter of places (or a department
    asking for its own figures); else, and with `raw`, by the straightforward aggregate."""
    scope = scope or await scope_of(conn, who)
    cfg = cfg or await thresholds(conn)
    own_departments = unit == "department" and bool(scope.departments) and not scope.non_department
    if own_departments:
        vis, params = (
            "true",
            dict[str, Any](),
        )  # the unit filter keeps the caller's departments: all visible
    else:
        vis, params = scope.visibility()
    where = [vis]
    col = UNIT_COLUMN[unit]
    allowed = await scope.units(conn, unit)
    if allowed is not None:
        where.append(f"c.{col} = ANY(:units)")
        params["units"] = allowed
    if unit_id is not None:
        where.append(f"c.{col} = :unit_id")
        params["unit_id"] = unit_id
    params.update(since=period.start, until=period.end)
    cond = " AND ".join(where)
    fast = not raw and (own_departments or scope.everything or not scope.departments)
    if fast:
        m_from, m_to, e1, e2 = _months(period)
        params.update(m_from=m_from, m_to=m_to, e1=e1, e2=e2)
        rows = [dict(r._mapping) for r in await conn.execute(text(rollup_sql(unit, cond)), params)]
        for d in durations_for(unit):
            ns = {r["unit_id"]: int(r[f"{d.column}_n"]) for r in rows if r[f"{d.column}_n"]}
            tops: dict[int, list[float]] = {}
            if ns:
                ids = sorted(ns)
                offs = [ns[i] - 1 - math.ceil(0.9 * (ns[i] - 1)) for i in ids]
                # A plan for these very bounds and offsets: a generic plan (after five runs of
                # a prepared statement) may sort the unit's rows instead of walking the index.
                await conn.execute(text("SET plan_cache_mode = force_custom_plan"))
                try:
                    res = await conn.execute(
                        text(percentile_sql(unit, d.column, cond, len(ids))),
                        {
                            **params,
                            **{f"pid_{i}": x for i, x in enumerate(ids)},
                            **{f"poff_{i}": x for i, x in enumerate(offs)},
                        },
                    )
                    tops = {r.id: list(r.v) for r in res}
                finally:
                    await conn.execute(text("RESET plan_cache_mode"))
            for r in rows:
                uid = r["unit_id"]
                r[f"{d.name}_p90"] = percentile_cont(ns.get(uid, 0), tops.get(uid, []))
    else:
        sql = aggregate_sql(unit, cond, raw)
        rows = [dict(r._mapping) for r in await conn.execute(text(sql), params)]
    rows = [r for r in rows if r["received"]]
    names = await _names(conn, unit, [r["unit_id"] for r in rows])
    homes = await households(conn, unit)
    out = [
        row_out(r, unit, period, lang, names.get(r["unit_id"]), homes.get(r["unit_id"]), cfg)
        for r in rows
    ]
    out.sort(
        key=lambda x: (-(x["score"] or -1), -x["figures"]["received"]["value"], x["unit"]["id"])
    )
    return out


def row_out(
    r: Any,
    unit: str,
    period: Period,
    lang: Lang,
    name: dict[str, Any] | None,
    homes: int | None,
    cfg: dict[str, Any],
) -> dict[str, Any]:
    link = {UNIT_PARAM[unit]: r["unit_id"]}
    figures: dict[str, Any] = {}
    for m in MEASURES:
        figures[m] = {
            "label": label(COUNT_LABELS, m, lang),
            "value": int(r[m]),
            "cases_url": cases_url(period, m, **link),
        }
    rates: dict[str, float | None] = {}
    for rate in RATES:
        num, den = int(r[rate.numerator]), int(r[rate.denominator])
        value = round(num / den, 4) if den else None
        rates[rate.name] = value
        figures[rate.name] = {
            "label": rate.en if lang == "en" else rate.zh,
            "value": value,
            "numerator": num,
            "denominator": den,
            "cases_url": cases_url(period, rate.numerator, **link),
            "denominator_url": cases_url(period, rate.denominator, **link),
        }
    unreachable, evaluated = int(r["unreachable"]), int(r["evaluated"])
    figures["unreachable_share"] = {
        "label": "无法联系占比" if lang == "zh" else "share not reached",
        "value": round(unreachable / (unreachable + evaluated), 4)
        if unreachable + evaluated
        else None,
        "numerator": unreachable,
        "denominator": unreachable + evaluated,
        "cases_url": cases_url(period, "unreachable", **link),
        "denominator_url": None,
    }
    for d in durations_for(unit):
        n = int(r[f"{d.column}_n"])
        figures[d.name] = {
            "label": d.en if lang == "en" else d.zh,
            "mean": _round(r[f"{d.column}_sum"] / n) if n else None,
            "p90": _round(r[f"{d.name}_p90"]),
            "n": int(r[d.having]),
            "cases_url": cases_url(period, d.having, **link),
        }
    if homes is not None or unit in ("district", "street", "community", "grid"):
        figures["per_1000_households"] = {
            "label": "每千户事件数" if lang == "zh" else "cases per 1,000 households",
            "value": round(int(r["received"]) * 1000 / homes, 2) if homes else None,
            "households": homes or 0,
            "cases_url": cases_url(period, "received", **link),
        }
    score = score_of(rates, cfg["weights"])
    rating = rating_of(score, int(r["received"]), cfg)
    return {
        "unit": {
            "kind": unit,
            "kind_label": label(UNIT_LABELS, unit, lang),
            **(name or {"id": r["unit_id"], "code": None, "name": None}),
        },
        "period": period.out(),
        "figures": figures,
        "score": score,
        "rating": rating,
        "rating_label": label(RATING_LABELS, rating, lang),
    }


# --- rankings -------------------------------------------------------------------------------------


def _ranked(rows: list[dict[str, Any]]) -> dict[int, int]:
    """Competition ranking by score (1, 1, 3 …); unrated units (no score) come last."""
    ranks: dict[int, int] = {}
    last: float | None = None
    rank = 0
    for i, row in enumerate(
        sorted(
            rows, key=lambda x: (-(x["score"] if x["score"] is not None else -1), x["unit"]["id"])
        )
    ):
        if row["score"] != last:
            rank = i + 1
            last = row["score"]
        ranks[row["unit"]["id"]] = rank
    return ranks


async def rankings(
    conn: AsyncConnection, who: Principal, unit: str, period: Period, prev: Period, lang: Lang
) -> list[dict[str, Any]]:
    cfg = await thresholds(conn)
    scope = await scope_of(conn, who)
    now = await indicator_rows(conn, who, unit, period, lang, cfg=cfg, scope=scope)
    before = await indicator_rows(conn, who, unit, prev, lang, cfg=cfg, scope=scope)
    ranks, prev_ranks = _ranked(now), _ranked(before)
    prev_by = {r["unit"]["id"]: r for r in before}
    out = []
    for row in now:
        uid = row["unit"]["id"]
        p = prev_by.get(uid)
        key = (
            "sign_in_on_time_rate",
            "handled_on_time_rate",
            "rework_rate",
            "closure_rate",
            "satisfaction_rate",
            "response_rate",
            "resolution_rate",
        )
        out.append(
            {
                "rank": ranks[uid],
                "unit": row["unit"],
                "score": row["score"],
                "rating": row["rating"],
                "rating_label": row["rating_label"],
                "received": row["figures"]["received"]["value"],
                "rates": {k: row["figures"][k]["value"] for k in key},
                "previous": None
                if p is None
                else {
                    "rank": prev_ranks[uid],
                    "score": p["score"],
                    "rating": p["rating"],
                    "received": p["figures"]["received"]["value"],
                },
                "score_change": None
                if p is None or p["score"] is None or row["score"] is None
                else round(row["score"] - p["score"], 2),
                "rank_change": None if p is None else prev_ranks[uid] - ranks[uid],
                "cases_url": row["figures"]["received"]["cases_url"],
            }
        )
    out.sort(key=lambda x: (x["rank"], x["unit"]["id"]))
    return out

"""Evaluation (考评): working time in SQL, per-case and per-department fact tables kept exact by
triggers in the same transaction as every change, rating thresholds (issue 7).

- `work_calendar` (one row per day 2004–2035: working day?, office hours before that day) and
  `work_hours` (the office periods) let SQL count working hours: `stats_wh(a, b)`. Filled here
  from chinesecalendar (the app's WorkCalendar); a year loaded into `work_schedules` rewrites its
  days by trigger; `wangge stats-rebuild` re-syncs everything (e.g. after WANGGE_OFFICE_HOURS).
- `stats_case_facts_v` / `stats_dept_facts_v` define the facts from the raw tables (cases,
  case_assignments); `stats_case_facts` / `stats_dept_facts` hold them, refreshed for the changed
  cases by statement-level triggers on cases and case_assignments. `stats_rebuild()` recomputes
  everything from scratch.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_YEAR, LAST_YEAR = 2004, 2035

CASE_FACTS_V = """
CREATE VIEW stats_case_facts_v AS
SELECT c.id, c.district_id, c.street_id, c.community_id, c.grid_id, c.reporter_id,
       c.category_code, c.channel, c.urgency, c.reported_at, c.closed_at, c.status,
       c.on_spot, c.rework_count, c.reopen_count, c.satisfaction, c.lead_department_id,
       c.status NOT IN ('reported', 'rejected') AS accepted,
       coalesce(x.n, 0) > 0 AS dispatched,
       coalesce(x.returned, false) AS returned,
       (c.rework_count > 0 OR c.on_spot OR c.status IN ('feedback', 'verified', 'closed', 'rework')
        OR coalesce(x.fed_back, false)) AS handed_in,
       x.next_due,
       l.state AS lead_state, l.dispatched_at AS lead_dispatched_at,
       l.sign_in_due AS lead_sign_in_due, l.signed_in_at AS lead_signed_in_at,
       l.handle_due AS lead_handle_due, l.feedback_at AS lead_feedback_at,
       stats_wh(l.dispatched_at, l.signed_in_at) AS sign_in_wh,
       CASE WHEN c.status = 'closed' THEN stats_wh(c.reported_at, c.closed_at) END AS close_wh
FROM cases c
LEFT JOIN LATERAL (
    SELECT count(*) AS n, bool_or(a.state = 'returned') AS returned,
           bool_or(a.feedback_at IS NOT NULL) AS fed_back,
           min(CASE WHEN a.state = 'dispatched' THEN a.sign_in_due
                    WHEN a.state IN ('handling', 'rework') THEN a.handle_due END) AS next_due
    FROM case_assignments a WHERE a.case_id = c.id AND a.state <> 'withdrawn'
) x ON true
LEFT JOIN LATERAL (
    SELECT a.* FROM case_assignments a
    WHERE a.case_id = c.id AND a.department_id = c.lead_department_id AND a.state <> 'withdrawn'
    ORDER BY a.id DESC LIMIT 1
) l ON true
WHERE c.duplicate_of IS NULL
"""

DEPT_FACTS_V = """
CREATE VIEW stats_dept_facts_v AS
SELECT a.case_id AS id, a.department_id, c.district_id, c.street_id, c.community_id, c.grid_id,
       c.reporter_id, c.category_code, c.channel, c.reported_at, c.status AS case_status,
       c.satisfaction, a.id AS assignment_id, a.role, a.state, a.dispatched_at, a.sign_in_due,
       a.signed_in_at, a.handle_due, a.feedback_at, r.rework_count, r.returned,
       stats_wh(a.dispatched_at, a.signed_in_at) AS sign_in_wh,
       stats_wh(a.signed_in_at, a.feedback_at) AS handle_wh,
       CASE WHEN c.status = 'closed' AND a.state <> 'returned'
            THEN stats_wh(a.dispatched_at, c.closed_at) END AS close_wh
FROM (
    SELECT DISTINCT ON (case_id, department_id) *
    FROM case_assignments WHERE state <> 'withdrawn'
    ORDER BY case_id, department_id, id DESC
) a
JOIN cases c ON c.id = a.case_id AND c.duplicate_of IS NULL
CROSS JOIN LATERAL (
    SELECT sum(x.rework_count)::int AS rework_count, bool_or(x.state = 'returned') AS returned
    FROM case_assignments x
    WHERE x.case_id = a.case_id AND x.department_id = a.department_id AND x.state <> 'withdrawn'
) r
"""


def _calendar_rows() -> list[tuple[str, bool]]:
    from datetime import date, timedelta

    from app.worktime.calendar import default_calendar

    cal = default_calendar()
    d, last, out = date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31), []
    while d <= last:
        out.append((d.isoformat(), cal.is_workday(d)))
        d += timedelta(days=1)
    return out


ROLLUP_KEYS = {
    "stats_case_monthly": ("district_id", "street_id", "community_id", "grid_id", "reporter_id"),
    "stats_dept_monthly": (
        "department_id",
        "district_id",
        "street_id",
        "community_id",
        "grid_id",
        "reporter_id",
    ),
}
DURATIONS = {
    "stats_case_facts": ("sign_in_wh", "close_wh"),
    "stats_dept_facts": ("sign_in_wh", "handle_wh", "close_wh"),
}
WALK_UNITS = {
    "stats_case_facts": ("district_id", "street_id", "community_id", "grid_id", "reporter_id"),
    "stats_dept_facts": ("department_id",),
}
SCOPE_COLUMNS = (
    "reported_at",
    "district_id",
    "street_id",
    "community_id",
    "grid_id",
    "reporter_id",
)


def _rollups() -> None:
    """Monthly rollups of the facts' static measures and duration sums, kept by statement-level
    triggers on the fact tables (subtract the deleted rows, add the inserted ones), and the
    indexes that find a percentile by walking down from the largest value."""
    from app.stats.definitions import MEASURES, static_part

    for rollup, facts, dept in (
        ("stats_case_monthly", "stats_case_facts", False),
        ("stats_dept_monthly", "stats_dept_facts", True),
    ):
        keys = ROLLUP_KEYS[rollup]
        durs = DURATIONS[facts]
        cols = ["month date NOT NULL", *(f"{k} bigint" for k in keys)]
        cols += [f"{m} integer NOT NULL DEFAULT 0" for m in MEASURES]
        for d in durs:
            cols += [f"{d}_n integer NOT NULL DEFAULT 0", f"{d}_sum numeric NOT NULL DEFAULT 0"]
        op.execute(f"CREATE TABLE {rollup} ({', '.join(cols)})")
        op.execute(f"CREATE INDEX ix_{rollup}_month ON {rollup} (month)")
        op.execute(
            f"ALTER TABLE {rollup} ADD CONSTRAINT fk_{rollup}_district_id_areas "
            "FOREIGN KEY (district_id) REFERENCES areas (id)"
        )
        values = [f"count(*) FILTER (WHERE {static_part(m, 't', dept)})" for m in MEASURES]
        for d in durs:
            values += [f"count(t.{d})", f"coalesce(sum(t.{d}::numeric), 0)"]
        names = [*MEASURES, *(x for d in durs for x in (f"{d}_n", f"{d}_sum"))]
        key_sql = ", ".join(f"t.{k}" for k in keys)
        fn = f"{rollup}_roll"
        op.execute(
            f"""
            CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
            BEGIN
              -- Deltas only (no upsert): concurrent changes never wait on a shared rollup row.
              INSERT INTO {rollup} (month, {", ".join(keys)}, {", ".join(names)})
              SELECT (date_trunc('month', t.reported_at AT TIME ZONE 'Asia/Shanghai'))::date,
                     {key_sql}, {", ".join(f"sign * {v}" for v in values)}
              FROM changed t GROUP BY 1, {key_sql};
              RETURN NULL;
            END $$
            """
        )
        for event, ref in (("INSERT", "NEW"), ("DELETE", "OLD")):
            op.execute(
                f"CREATE TRIGGER {rollup}_{event.lower()} AFTER {event} ON {facts} "
                f"REFERENCING {ref} TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
            )
        for unit in WALK_UNITS[facts]:
            include = ", ".join(c for c in SCOPE_COLUMNS if c != unit)
            for d in durs:
                op.execute(
                    f"CREATE INDEX ix_{facts}_{unit}_{d} ON {facts} ({unit}, {d}) "
                    f"INCLUDE ({include})"
                )
        # Compaction: the deltas of each key merged into one row (exact; run daily).
        op.execute(
            f"""
            CREATE FUNCTION {rollup}_compact() RETURNS bigint LANGUAGE plpgsql AS $$
            DECLARE n bigint;
            BEGIN
              WITH gone AS (DELETE FROM {rollup} RETURNING *),
              merged AS (
                INSERT INTO {rollup} (month, {", ".join(keys)}, {", ".join(names)})
                SELECT month, {", ".join(keys)}, {", ".join(f"sum({n})" for n in names)}
                FROM gone GROUP BY month, {", ".join(keys)}
                HAVING sum(received) <> 0 RETURNING 1)
              SELECT count(*) INTO n FROM merged;
              RETURN n;
            END $$
            """
        )
    # Hot spots: received cases by month, place and category (the map's choropleth).
    hot_keys = "district_id, street_id, community_id, grid_id, reporter_id, category_code"
    op.execute(
        "CREATE TABLE stats_hotspot_monthly (month date NOT NULL, district_id bigint, "
        "street_id bigint, community_id bigint, grid_id bigint, reporter_id bigint, "
        "category_code varchar(16), received integer NOT NULL DEFAULT 0)"
    )
    op.execute("CREATE INDEX ix_stats_hotspot_monthly_month ON stats_hotspot_monthly (month)")
    op.execute(
        "ALTER TABLE stats_hotspot_monthly ADD CONSTRAINT fk_stats_hotspot_monthly_district_id_areas "
        "FOREIGN KEY (district_id) REFERENCES areas (id)"
    )
    op.execute(
        f"""
        CREATE FUNCTION stats_hotspot_monthly_roll() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
        BEGIN
          INSERT INTO stats_hotspot_monthly (month, {hot_keys}, received)
          SELECT (date_trunc('month', t.reported_at AT TIME ZONE 'Asia/Shanghai'))::date,
                 {hot_keys}, sign * count(*)
          FROM changed t GROUP BY 1, {hot_keys};
          RETURN NULL;
        END $$
        """
    )
    for event, ref in (("INSERT", "NEW"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER stats_hotspot_monthly_{event.lower()} AFTER {event} "
            f"ON stats_case_facts REFERENCING {ref} TABLE AS changed FOR EACH STATEMENT "
            "EXECUTE FUNCTION stats_hotspot_monthly_roll()"
        )
    op.execute(
        f"""
        CREATE FUNCTION stats_hotspot_monthly_compact() RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE n bigint;
        BEGIN
          WITH gone AS (DELETE FROM stats_hotspot_monthly RETURNING *),
          merged AS (
            INSERT INTO stats_hotspot_monthly (month, {hot_keys}, received)
            SELECT month, {hot_keys}, sum(received) FROM gone GROUP BY month, {hot_keys}
            HAVING sum(received) <> 0 RETURNING 1)
          SELECT count(*) INTO n FROM merged;
          RETURN n;
        END $$
        """
    )
    # The clock's part is counted over the facts with a running deadline only.
    op.execute(
        "CREATE INDEX ix_stats_case_facts_open ON stats_case_facts (reported_at) "
        "WHERE next_due IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_stats_dept_facts_open ON stats_dept_facts (department_id, reported_at) "
        "WHERE state IN ('dispatched', 'handling', 'rework')"
    )


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE work_hours (
            id boolean DEFAULT true CONSTRAINT pk_work_hours PRIMARY KEY
                CONSTRAINT ck_work_hours_one_row CHECK (id),
            morning_start double precision NOT NULL, morning_end double precision NOT NULL,
            afternoon_start double precision NOT NULL, afternoon_end double precision NOT NULL)
        """
    )
    op.execute("INSERT INTO work_hours VALUES (true, 30600, 43200, 52200, 63000)")
    op.execute(
        """
        CREATE TABLE work_calendar (
            day date CONSTRAINT pk_work_calendar PRIMARY KEY, workday boolean NOT NULL,
            base_workday boolean NOT NULL,
            wh_before double precision NOT NULL DEFAULT 0)
        """
    )
    rows = _calendar_rows()
    for i in range(0, len(rows), 2000):
        values = ", ".join(
            f"('{d}', {str(w).lower()}, {str(w).lower()})" for d, w in rows[i : i + 2000]
        )
        op.execute(f"INSERT INTO work_calendar (day, workday, base_workday) VALUES {values}")
    op.execute(
        """
        CREATE FUNCTION stats_calendar_cumulate() RETURNS void LANGUAGE sql AS $$
          UPDATE work_calendar w SET wh_before = s.before
          FROM (SELECT day, coalesce(sum(CASE WHEN workday THEN 1 ELSE 0 END)
                         OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                         * (SELECT (morning_end - morning_start + afternoon_end - afternoon_start)
                                   / 3600.0 FROM work_hours) AS before
                FROM work_calendar) s
          WHERE s.day = w.day AND w.wh_before IS DISTINCT FROM s.before
        $$
        """
    )
    op.execute("SELECT stats_calendar_cumulate()")
    # Office hours elapsed from the start of the calendar to t (NULL outside the calendar).
    op.execute(
        """
        CREATE FUNCTION stats_wh_at(t timestamptz) RETURNS double precision
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT w.wh_before + CASE WHEN w.workday THEN
                   (greatest(0, least(x.s, h.morning_end) - h.morning_start)
                    + greatest(0, least(x.s, h.afternoon_end) - h.afternoon_start)) / 3600.0
                 ELSE 0 END
          FROM (SELECT (t AT TIME ZONE 'Asia/Shanghai')::date AS d,
                       extract(epoch FROM (t AT TIME ZONE 'Asia/Shanghai')::time) AS s) x
          JOIN work_calendar w ON w.day = x.d
          CROSS JOIN work_hours h
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION stats_wh(a timestamptz, b timestamptz) RETURNS double precision
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL
                      ELSE stats_wh_at(b) - stats_wh_at(a) END
        $$
        """
    )
    # The inverse: the instant `hours` of office time after t (the loop's deadlines, in SQL).
    op.execute("CREATE INDEX ix_work_calendar_wh_before ON work_calendar (wh_before) WHERE workday")
    op.execute(
        """
        CREATE FUNCTION stats_wh_add(t timestamptz, hours double precision) RETURNS timestamptz
        LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
        DECLARE
          v double precision;
          d date;
          before double precision;
          h work_hours;
          secs double precision;
        BEGIN
          IF t IS NULL OR hours IS NULL THEN RETURN NULL; END IF;
          IF hours <= 0 THEN RETURN t; END IF;
          v := stats_wh_at(t) + hours;
          SELECT c.day, c.wh_before INTO d, before FROM work_calendar c
          WHERE c.workday AND c.wh_before < v ORDER BY c.wh_before DESC LIMIT 1;
          IF d IS NULL THEN RETURN NULL; END IF;
          SELECT * INTO h FROM work_hours;
          secs := (v - before) * 3600;
          IF secs <= h.morning_end - h.morning_start THEN
            secs := h.morning_start + secs;
          ELSE
            secs := h.afternoon_start + secs - (h.morning_end - h.morning_start);
          END IF;
          RETURN (d + make_interval(secs => secs)) AT TIME ZONE 'Asia/Shanghai';
        END $$
        """
    )
    op.execute(CASE_FACTS_V)
    op.execute(DEPT_FACTS_V)
    op.execute("CREATE TABLE stats_case_facts AS SELECT * FROM stats_case_facts_v WITH NO DATA")
    op.execute("CREATE TABLE stats_dept_facts AS SELECT * FROM stats_dept_facts_v WITH NO DATA")
    op.execute(
        """
        ALTER TABLE stats_case_facts ADD CONSTRAINT pk_stats_case_facts PRIMARY KEY (id),
          ADD CONSTRAINT fk_stats_case_facts_id_cases FOREIGN KEY (id) REFERENCES cases (id)
              ON DELETE CASCADE,
          ADD CONSTRAINT fk_stats_case_facts_district_id_areas FOREIGN KEY (district_id)
              REFERENCES areas (id)
        """
    )
    op.execute(
        """
        ALTER TABLE stats_dept_facts
          ADD CONSTRAINT pk_stats_dept_facts PRIMARY KEY (id, department_id),
          ADD CONSTRAINT fk_stats_dept_facts_id_cases FOREIGN KEY (id)
              REFERENCES cases (id) ON DELETE CASCADE,
          ADD CONSTRAINT fk_stats_dept_facts_district_id_areas FOREIGN KEY (district_id)
              REFERENCES areas (id)
        """
    )
    for table, cols in (
        ("stats_case_facts", "reported_at"),
        ("stats_case_facts", "street_id, reported_at"),
        ("stats_case_facts", "community_id, reported_at"),
        ("stats_case_facts", "grid_id, reported_at"),
        ("stats_case_facts", "reporter_id, reported_at"),
        ("stats_dept_facts", "department_id, reported_at"),
        ("stats_dept_facts", "reported_at"),
    ):
        name = f"ix_{table}_{cols.replace(', ', '_')}"
        op.execute(f"CREATE INDEX {name} ON {table} ({cols})")
    _rollups()
    op.execute(
        """
        CREATE FUNCTION stats_refresh(ids bigint[]) RETURNS void LANGUAGE sql AS $$
          DELETE FROM stats_case_facts WHERE id = ANY(ids);
          INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v WHERE id = ANY(ids);
          DELETE FROM stats_dept_facts WHERE id = ANY(ids);
          INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v WHERE id = ANY(ids);
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION stats_rebuild() RETURNS void LANGUAGE sql AS $$
          TRUNCATE stats_case_facts, stats_dept_facts, stats_case_monthly, stats_dept_monthly,
                   stats_hotspot_monthly;
          INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v;
          INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v;
        $$
        """
    )
    # Statement-level triggers: every statement that changes cases or assignments refreshes the
    # facts of the cases it touched, once, in the same transaction.
    for table, key in (("cases", "id"), ("case_assignments", "case_id")):
        for event, rows in (("INSERT", "new_rows"), ("UPDATE", "new_rows"), ("DELETE", "old_rows")):
            fn = f"stats_{table}_{event.lower()}"
            op.execute(
                f"""
                CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  PERFORM stats_refresh(array(SELECT DISTINCT {key} FROM {rows}));
                  RETURN NULL;
                END $$
                """
            )
            ref = "NEW TABLE AS new_rows" if rows == "new_rows" else "OLD TABLE AS old_rows"
            op.execute(
                f"CREATE TRIGGER {fn} AFTER {event} ON {table} REFERENCING {ref} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
            )
    # A year's official schedule loaded by an administrator rewrites its days, then the working
    # hours of the facts that can span it.
    op.execute(
        """
        CREATE FUNCTION stats_schedule_loaded() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE work_calendar w SET workday =
              (w.day::text IN (SELECT jsonb_array_elements_text(NEW.schedule -> 'workdays')))
              OR (extract(isodow FROM w.day) < 6 AND w.day::text NOT IN (
                    SELECT coalesce(h ->> 'date', h #>> '{}')
                    FROM jsonb_array_elements(NEW.schedule -> 'holidays') h))
          WHERE extract(year FROM w.day) = NEW.year;
          PERFORM stats_calendar_cumulate();
          PERFORM stats_refresh(array(
              SELECT id FROM cases WHERE reported_at >= make_date(NEW.year - 1, 1, 1)));
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER stats_schedule_loaded AFTER INSERT OR UPDATE ON work_schedules "
        "FOR EACH ROW EXECUTE FUNCTION stats_schedule_loaded()"
    )
    # A loaded year deleted: its days go back to the built-in schedule (or plain weekends).
    op.execute(
        """
        CREATE FUNCTION stats_schedule_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE work_calendar SET workday = base_workday
          WHERE extract(year FROM day) = OLD.year AND workday <> base_workday;
          PERFORM stats_calendar_cumulate();
          PERFORM stats_refresh(array(
              SELECT id FROM cases WHERE reported_at >= make_date(OLD.year - 1, 1, 1)));
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER stats_schedule_removed AFTER DELETE ON work_schedules "
        "FOR EACH ROW EXECUTE FUNCTION stats_schedule_removed()"
    )
    op.execute(
        """
        CREATE TABLE stats_thresholds (
            id boolean DEFAULT true CONSTRAINT pk_stats_thresholds PRIMARY KEY
                CONSTRAINT ck_stats_thresholds_one_row CHECK (id),
            config jsonb NOT NULL,
            updated_by bigint CONSTRAINT fk_stats_thresholds_updated_by_users
                REFERENCES users (id),
            updated_at timestamptz NOT NULL DEFAULT now())
        """
    )
    op.execute("UPDATE work_schedules SET year = year")  # years already loaded
    op.execute("SELECT stats_rebuild()")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS stats_thresholds")
    for event in ("insert", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS stats_hotspot_monthly_{event} ON stats_case_facts")
    op.execute("DROP FUNCTION IF EXISTS stats_hotspot_monthly_roll()")
    op.execute("DROP FUNCTION IF EXISTS stats_hotspot_monthly_compact()")
    op.execute("DROP TABLE IF EXISTS stats_hotspot_monthly")
    for rollup, facts in (
        ("stats_case_monthly", "stats_case_facts"),
        ("stats_dept_monthly", "stats_dept_facts"),
    ):
        for event in ("insert", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {rollup}_{event} ON {facts}")
        op.execute(f"DROP FUNCTION IF EXISTS {rollup}_roll() CASCADE")
        op.execute(f"DROP FUNCTION IF EXISTS {rollup}_compact()")
        op.execute(f"DROP TABLE IF EXISTS {rollup}")
    op.execute("DROP TRIGGER IF EXISTS stats_schedule_removed ON work_schedules")
    op.execute("DROP FUNCTION IF EXISTS stats_schedule_removed()")
    op.execute("DROP TRIGGER IF EXISTS stats_schedule_loaded ON work_schedules")
    op.execute("DROP FUNCTION IF EXISTS stats_schedule_loaded()")
    for table in ("cases", "case_assignments"):
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS stats_{table}_{event} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS stats_{table}_{event}()")
    op.execute("DROP FUNCTION IF EXISTS stats_rebuild()")
    op.execute("DROP FUNCTION IF EXISTS stats_refresh(bigint[])")
    op.execute("DROP TABLE IF EXISTS stats_dept_facts")
    op.execute("DROP TABLE IF EXISTS stats_case_facts")
    op.execute("DROP VIEW IF EXISTS stats_dept_facts_v")
    op.execute("DROP VIEW IF EXISTS stats_case_facts_v")
    op.execute("DROP FUNCTION IF EXISTS stats_wh_add(timestamptz, double precision)")
    op.execute("DROP FUNCTION IF EXISTS stats_wh(timestamptz, timestamptz)")
    op.execute("DROP FUNCTION IF EXISTS stats_wh_at(timestamptz)")
    op.execute("DROP FUNCTION IF EXISTS stats_calendar_cumulate()")
    op.execute("DROP TABLE IF EXISTS work_calendar")
    op.execute("DROP TABLE IF EXISTS work_hours")

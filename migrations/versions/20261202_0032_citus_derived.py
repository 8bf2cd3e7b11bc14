"""The evaluation's derived data on both engines (issue 18): fact views that pair the district,
monthly rollups kept by the refresh itself, and a cluster-wide order for sync.

- `stats_case_facts_v` / `stats_dept_facts_v`: every join and correlated subquery between
  `cases` and `case_assignments` pairs `district_id` (and the assignments' `DISTINCT ON` leads
  with it), so that on Citus the refresh's `INSERT … SELECT` from the views is pushed down to the
  shards (before: "complex joins are only supported when all distributed tables are co-located
  and joined on their distribution columns"). Same rows on plain PostgreSQL.
- The monthly rollups (`stats_case_monthly`, `stats_dept_monthly`, `stats_hotspot_monthly`) were
  kept by statement triggers with transition tables on the facts; on a Citus shard those cannot
  run ("could not find named tuplestore"), so `wangge distribute` had disabled them. Now
  `stats_refresh(ids)` writes the deltas itself: it subtracts the cases' old fact rows, replaces
  the facts, and adds the new rows (the same grouped statements the triggers ran, read from their
  functions here), and `stats_rebuild()` fills the rollups from the rebuilt facts. Each rollup
  statement groups by the district, so Citus runs it on the shards. The triggers are dropped.
- Sync's order (`cases.change_xid` → `cases.change_seq`): on Citus the row trigger that stamped
  `pg_current_xact_id()` ran on the worker holding the shard, so the cursor mixed the xids of
  different nodes, and the horizon (the coordinator's snapshot) did not bound them. Now the
  number is the coordinator's transaction id, `sync_number()`, which every UPDATE of a case sets
  in its own statement (Citus evaluates it on the coordinator before routing the statement) and
  the column's default gives an insert; the trigger still stamps a statement that did not (plain
  PostgreSQL; `wangge distribute` disables it on Citus). The horizon, `sync_horizon()`, is the
  coordinator's snapshot xmin, lowered to the oldest transaction that still holds its own lock:
  on Citus a two-phase commit leaves the coordinator's snapshot before the workers' `COMMIT
  PREPARED` (sent from the commit callback, before the transaction's locks are released), so a
  change is handed out only once it is visible on every node. Existing values are kept (on one
  PostgreSQL they are the same xids, so phones' cursors stay valid).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02
"""

import re
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (rollup, facts it rolls up)
ROLLUPS = (
    ("stats_case_monthly", "stats_case_facts"),
    ("stats_hotspot_monthly", "stats_case_facts"),
    ("stats_dept_monthly", "stats_dept_facts"),
)

CASE_V_OLD = """
SELECT c.id,
    c.district_id,
    c.street_id,
    c.community_id,
    c.grid_id,
    c.reporter_id,
    c.category_code,
    c.channel,
    c.urgency,
    c.reported_at,
    c.closed_at,
    c.status,
    c.on_spot,
    c.rework_count,
    c.reopen_count,
        CASE
            WHEN (EXISTS ( SELECT 1
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text AND (e.detail ->> 'satisfaction'::text) = 'dissatisfied'::text)) THEN 'dissatisfied'::character varying
            ELSE COALESCE(c.satisfaction, (( SELECT e.detail ->> 'satisfaction'::text
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text
              ORDER BY e.id DESC
             LIMIT 1))::character varying)
        END::character varying(20) AS satisfaction,
    c.lead_department_id,
    c.status::text <> ALL (ARRAY['reported'::character varying::text, 'rejected'::character varying::text]) AS accepted,
    COALESCE(x.n, 0::bigint) > 0 AS dispatched,
    COALESCE(x.returned, false) AS returned,
    c.rework_count > 0 OR c.on_spot OR (c.status::text = ANY (ARRAY['feedback'::character varying::text, 'verified'::character varying::text, 'closed'::character varying::text, 'rework'::character varying::text])) OR COALESCE(x.fed_back, false) AS handed_in,
    x.next_due,
    l.state AS lead_state,
    l.dispatched_at AS lead_dispatched_at,
    l.sign_in_due AS lead_sign_in_due,
    l.signed_in_at AS lead_signed_in_at,
    l.handle_due AS lead_handle_due,
    l.feedback_at AS lead_feedback_at,
    stats_wh(l.dispatched_at, l.signed_in_at) AS sign_in_wh,
        CASE
            WHEN c.status::text = 'closed'::text THEN stats_wh(c.reported_at, c.closed_at)
            ELSE NULL::double precision
        END AS close_wh
   FROM cases c
     LEFT JOIN LATERAL ( SELECT count(*) AS n,
            bool_or(a.state::text = 'returned'::text) AS returned,
            bool_or(a.feedback_at IS NOT NULL) AS fed_back,
            min(
                CASE
                    WHEN a.state::text = 'dispatched'::text THEN a.sign_in_due
                    WHEN a.state::text = ANY (ARRAY['handling'::character varying::text, 'rework'::character varying::text]) THEN a.handle_due
                    ELSE NULL::timestamp with time zone
                END) AS next_due
           FROM case_assignments a
          WHERE a.case_id = c.id AND a.state::text <> 'withdrawn'::text) x ON true
     LEFT JOIN LATERAL ( SELECT a.id,
            a.case_id,
            a.department_id,
            a.role,
            a.state,
            a.dispatched_at,
            a.sign_in_due,
            a.signed_in_at,
            a.handle_due,
            a.feedback_at
           FROM case_assignments a
          WHERE a.case_id = c.id AND a.department_id = c.lead_department_id AND a.state::text <> 'withdrawn'::text
          ORDER BY a.id DESC
         LIMIT 1) l ON true
  WHERE c.duplicate_of IS NULL
"""

DEPT_V_OLD = """
SELECT a.case_id AS id,
    a.department_id,
    c.district_id,
    c.street_id,
    c.community_id,
    c.grid_id,
    c.reporter_id,
    c.category_code,
    c.channel,
    c.reported_at,
    c.status AS case_status,
        CASE
            WHEN (EXISTS ( SELECT 1
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text AND (e.detail ->> 'satisfaction'::text) = 'dissatisfied'::text)) THEN 'dissatisfied'::character varying
            ELSE COALESCE(c.satisfaction, (( SELECT e.detail ->> 'satisfaction'::text
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text
              ORDER BY e.id DESC
             LIMIT 1))::character varying)
        END::character varying(20) AS satisfaction,
    a.id AS assignment_id,
    a.role,
    a.state,
    a.dispatched_at,
    a.sign_in_due,
    a.signed_in_at,
    a.handle_due,
    a.feedback_at,
    r.rework_count,
    r.returned,
    stats_wh(a.dispatched_at, a.signed_in_at) AS sign_in_wh,
    stats_wh(a.signed_in_at, a.feedback_at) AS handle_wh,
        CASE
            WHEN c.status::text = 'closed'::text AND a.state::text <> 'returned'::text THEN stats_wh(a.dispatched_at, c.closed_at)
            ELSE NULL::double precision
        END AS close_wh
   FROM ( SELECT DISTINCT ON (case_assignments.case_id, case_assignments.department_id) case_assignments.id,
            case_assignments.case_id,
            case_assignments.department_id,
            case_assignments.role,
            case_assignments.state,
            case_assignments.dispatched_at,
            case_assignments.sign_in_due,
            case_assignments.signed_in_at,
            case_assignments.handle_due,
            case_assignments.feedback_at
           FROM case_assignments
          WHERE case_assignments.state::text <> 'withdrawn'::text
          ORDER BY case_assignments.case_id, case_assignments.department_id, case_assignments.id DESC) a
     JOIN cases c ON c.id = a.case_id AND c.duplicate_of IS NULL
     CROSS JOIN LATERAL ( SELECT sum(x.rework_count)::integer AS rework_count,
            bool_or(x.state::text = 'returned'::text) AS returned
           FROM case_assignments x
          WHERE x.case_id = a.case_id AND x.department_id = a.department_id AND x.state::text <> 'withdrawn'::text) r
"""

CASE_V = """
SELECT c.id,
    c.district_id,
    c.street_id,
    c.community_id,
    c.grid_id,
    c.reporter_id,
    c.category_code,
    c.channel,
    c.urgency,
    c.reported_at,
    c.closed_at,
    c.status,
    c.on_spot,
    c.rework_count,
    c.reopen_count,
        CASE
            WHEN (EXISTS ( SELECT 1
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text AND (e.detail ->> 'satisfaction'::text) = 'dissatisfied'::text)) THEN 'dissatisfied'::character varying
            ELSE COALESCE(c.satisfaction, (( SELECT e.detail ->> 'satisfaction'::text
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text
              ORDER BY e.id DESC
             LIMIT 1))::character varying)
        END::character varying(20) AS satisfaction,
    c.lead_department_id,
    c.status::text <> ALL (ARRAY['reported'::character varying::text, 'rejected'::character varying::text]) AS accepted,
    COALESCE(x.n, 0::bigint) > 0 AS dispatched,
    COALESCE(x.returned, false) AS returned,
    c.rework_count > 0 OR c.on_spot OR (c.status::text = ANY (ARRAY['feedback'::character varying::text, 'verified'::character varying::text, 'closed'::character varying::text, 'rework'::character varying::text])) OR COALESCE(x.fed_back, false) AS handed_in,
    x.next_due,
    l.state AS lead_state,
    l.dispatched_at AS lead_dispatched_at,
    l.sign_in_due AS lead_sign_in_due,
    l.signed_in_at AS lead_signed_in_at,
    l.handle_due AS lead_handle_due,
    l.feedback_at AS lead_feedback_at,
    stats_wh(l.dispatched_at, l.signed_in_at) AS sign_in_wh,
        CASE
            WHEN c.status::text = 'closed'::text THEN stats_wh(c.reported_at, c.closed_at)
            ELSE NULL::double precision
        END AS close_wh
   FROM cases c
     LEFT JOIN LATERAL ( SELECT count(*) AS n,
            bool_or(a.state::text = 'returned'::text) AS returned,
            bool_or(a.feedback_at IS NOT NULL) AS fed_back,
            min(
                CASE
                    WHEN a.state::text = 'dispatched'::text THEN a.sign_in_due
                    WHEN a.state::text = ANY (ARRAY['handling'::character varying::text, 'rework'::character varying::text]) THEN a.handle_due
                    ELSE NULL::timestamp with time zone
                END) AS next_due
           FROM case_assignments a
          WHERE a.case_id = c.id AND a.district_id = c.district_id AND a.state::text <> 'withdrawn'::text) x ON true
     LEFT JOIN LATERAL ( SELECT a.id,
            a.case_id,
            a.department_id,
            a.role,
            a.state,
            a.dispatched_at,
            a.sign_in_due,
            a.signed_in_at,
            a.handle_due,
            a.feedback_at
           FROM case_assignments a
          WHERE a.case_id = c.id AND a.district_id = c.district_id AND a.department_id = c.lead_department_id AND a.state::text <> 'withdrawn'::text
          ORDER BY a.id DESC
         LIMIT 1) l ON true
  WHERE c.duplicate_of IS NULL
"""

DEPT_V = """
SELECT a.case_id AS id,
    a.department_id,
    c.district_id,
    c.street_id,
    c.community_id,
    c.grid_id,
    c.reporter_id,
    c.category_code,
    c.channel,
    c.reported_at,
    c.status AS case_status,
        CASE
            WHEN (EXISTS ( SELECT 1
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text AND (e.detail ->> 'satisfaction'::text) = 'dissatisfied'::text)) THEN 'dissatisfied'::character varying
            ELSE COALESCE(c.satisfaction, (( SELECT e.detail ->> 'satisfaction'::text
               FROM case_events e
              WHERE e.case_id = c.id AND e.district_id = c.district_id AND e.action::text = 'evaluate'::text
              ORDER BY e.id DESC
             LIMIT 1))::character varying)
        END::character varying(20) AS satisfaction,
    a.id AS assignment_id,
    a.role,
    a.state,
    a.dispatched_at,
    a.sign_in_due,
    a.signed_in_at,
    a.handle_due,
    a.feedback_at,
    r.rework_count,
    r.returned,
    stats_wh(a.dispatched_at, a.signed_in_at) AS sign_in_wh,
    stats_wh(a.signed_in_at, a.feedback_at) AS handle_wh,
        CASE
            WHEN c.status::text = 'closed'::text AND a.state::text <> 'returned'::text THEN stats_wh(a.dispatched_at, c.closed_at)
            ELSE NULL::double precision
        END AS close_wh
   FROM ( SELECT DISTINCT ON (case_assignments.district_id, case_assignments.case_id, case_assignments.department_id) case_assignments.id,
            case_assignments.case_id,
            case_assignments.district_id,
            case_assignments.department_id,
            case_assignments.role,
            case_assignments.state,
            case_assignments.dispatched_at,
            case_assignments.sign_in_due,
            case_assignments.signed_in_at,
            case_assignments.handle_due,
            case_assignments.feedback_at
           FROM case_assignments
          WHERE case_assignments.state::text <> 'withdrawn'::text
          ORDER BY case_assignments.district_id, case_assignments.case_id, case_assignments.department_id, case_assignments.id DESC) a
     JOIN cases c ON c.id = a.case_id AND c.district_id = a.district_id AND c.duplicate_of IS NULL
     CROSS JOIN LATERAL ( SELECT sum(x.rework_count)::integer AS rework_count,
            bool_or(x.state::text = 'returned'::text) AS returned
           FROM case_assignments x
          WHERE x.case_id = a.case_id AND x.district_id = a.district_id AND x.department_id = a.department_id AND x.state::text <> 'withdrawn'::text) r
"""


def _rollup_statements() -> dict[str, str]:
    """Each rollup's grouped INSERT, as its trigger function runs it, with `sign` and the
    transition table `changed` left as `{sign}` and `{source}` to fill in."""
    out = {}
    for rollup, _ in ROLLUPS:
        src = (
            op.get_bind()
            .execute(text("SELECT prosrc FROM pg_proc WHERE proname = :f"), {"f": f"{rollup}_roll"})
            .scalar_one()
        )
        m = re.search(r"INSERT INTO .*?GROUP BY [^;]*", src, re.S)
        assert m, f"{rollup}_roll has no INSERT"
        stmt = m.group(0)
        assert "FROM changed t" in stmt and "sign * " in stmt
        out[rollup] = stmt.replace("sign * ", "{sign} * ").replace(
            "FROM changed t", "FROM {source}"
        )
    return out


def _rolled(stmts: dict[str, str], facts: str, sign: int, where: str) -> str:
    return "".join(
        stmts[r].format(sign=sign, source=f"{facts} t{where}") + ";\n"
        for r, f in ROLLUPS
        if f == facts
    )


def _on_citus() -> None:
    """On a database already distributed, the triggers of distributed tables are Citus's to
    change only with this on."""
    if op.get_bind().execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).scalar():
        op.execute("SET LOCAL citus.enable_unsafe_triggers = on")


def upgrade() -> None:
    _on_citus()
    op.execute("CREATE OR REPLACE VIEW stats_case_facts_v AS" + CASE_V)
    op.execute("CREATE OR REPLACE VIEW stats_dept_facts_v AS" + DEPT_V)
    stmts = _rollup_statements()
    w = " WHERE t.id = ANY(ids)"
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION stats_refresh(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          {_rolled(stmts, "stats_case_facts", -1, w)}
          DELETE FROM stats_case_facts WHERE id = ANY(ids);
          INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v WHERE id = ANY(ids);
          {_rolled(stmts, "stats_case_facts", 1, w)}
          {_rolled(stmts, "stats_dept_facts", -1, w)}
          DELETE FROM stats_dept_facts WHERE id = ANY(ids);
          INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v WHERE id = ANY(ids);
          {_rolled(stmts, "stats_dept_facts", 1, w)}
        END $$
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION stats_rebuild() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          SET CONSTRAINTS fk_stats_case_facts_id_cases, fk_stats_dept_facts_id_cases IMMEDIATE;
          TRUNCATE stats_case_facts, stats_dept_facts, stats_case_monthly, stats_dept_monthly,
                   stats_hotspot_monthly;
          INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v;
          INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v;
          {_rolled(stmts, "stats_case_facts", 1, "")}
          {_rolled(stmts, "stats_dept_facts", 1, "")}
          SET CONSTRAINTS fk_stats_case_facts_id_cases, fk_stats_dept_facts_id_cases DEFERRED;
        END $$
        """
    )
    for rollup, facts in ROLLUPS:
        for event in ("insert", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {rollup}_{event} ON {facts}")
    op.execute(
        """
        CREATE FUNCTION sync_number() RETURNS bigint LANGUAGE sql STABLE AS $$
          SELECT pg_current_xact_id()::text::bigint
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION sync_horizon() RETURNS bigint LANGUAGE sql STABLE AS $$
          -- A lock's xid is 32 bits: widened by its signed distance from xmax. The caller's
          -- own transaction is left out (it sees its own changes), as from the snapshot.
          SELECT least(s.xmin, (
                   SELECT min(s.xmax + ((l.transactionid::text::bigint - s.xmax % 4294967296
                                         + 6442450944) % 4294967296) - 2147483648)
                   FROM pg_locks l
                   WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock'
                     AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()))
          FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
                       pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) s
        $$
        """
    )
    op.execute("ALTER TABLE cases RENAME COLUMN change_xid TO change_seq")
    op.execute("ALTER TABLE cases ALTER COLUMN change_seq SET DEFAULT sync_number()")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION cases_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.change_seq IS NOT DISTINCT FROM OLD.change_seq THEN
            NEW.change_seq := sync_number();
          END IF;
          RETURN NEW;
        END $$
        """
    )


def downgrade() -> None:
    _on_citus()
    op.execute(
        "ALTER TABLE cases ALTER COLUMN change_seq SET DEFAULT pg_current_xact_id()::text::bigint"
    )
    op.execute("ALTER TABLE cases RENAME COLUMN change_seq TO change_xid")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION cases_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.change_xid := pg_current_xact_id()::text::bigint;
          RETURN NEW;
        END $$
        """
    )
    op.execute("DROP FUNCTION sync_horizon()")
    op.execute("DROP FUNCTION sync_number()")
    for rollup, facts in ROLLUPS:
        for event, ref in (("INSERT", "NEW"), ("DELETE", "OLD")):
            op.execute(
                f"CREATE TRIGGER {rollup}_{event.lower()} AFTER {event} ON {facts} "
                f"REFERENCING {ref} TABLE AS changed FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {rollup}_roll()"
            )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION stats_rebuild() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          SET CONSTRAINTS fk_stats_case_facts_id_cases, fk_stats_dept_facts_id_cases IMMEDIATE;
          TRUNCATE stats_case_facts, stats_dept_facts, stats_case_monthly, stats_dept_monthly,
                   stats_hotspot_monthly;
          INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v;
          INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v;
          SET CONSTRAINTS fk_stats_case_facts_id_cases, fk_stats_dept_facts_id_cases DEFERRED;
        END $$
        """
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION stats_refresh(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          DELETE FROM stats_case_facts WHERE id = ANY(ids);
          INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v WHERE id = ANY(ids);
          DELETE FROM stats_dept_facts WHERE id = ANY(ids);
          INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v WHERE id = ANY(ids);
        END $$
        """
    )
    op.execute("CREATE OR REPLACE VIEW stats_dept_facts_v AS" + DEPT_V_OLD)
    op.execute("CREATE OR REPLACE VIEW stats_case_facts_v AS" + CASE_V_OLD)

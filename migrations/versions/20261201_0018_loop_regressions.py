"""The loop's regressions of issue 16: when the street was told, who drew a boundary, the case
timeline in a hash chain, and a 不满意 rating that a reopen cannot hide.

- `case_assignments.escalated_at`: when the clock told the street (level 1). The centre is told
  `escalate_to_centre_hours` after that, not after the deadline (bug 3). Existing level-1 rows take
  the time of their last `escalated` step (else their deadline, the old reading).
- `grid_boundaries.created_by`: the author of each boundary version (bug 7); NULL for versions
  drawn before this migration (and the demo's).
- `case_events.prev_hash` / `hash`: each case's timeline is its own hash chain (bug 7), kept by the
  database like the audit log's: a step gets its id and its link under a per-case lock, the hashed
  columns cannot be edited (the district may move, by the cascade of 0014: it is not hashed).
  `case_event_hash(r)` is what a verifier recomputes. A per-case chain, not rows in the audit log:
  the audit chain takes one global lock per row, and every loop action would queue on it.
- The evaluation facts' `satisfaction` (bug 14): a case once rated 不满意 (dissatisfied) keeps that
  rating in the figures when it is reopened, whatever it is rated later; a reopened case that is not
  rated again keeps its last rating. The reopen itself is counted (`reopened`), as before.

Revision ID: 0018
Revises: 0019
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHAIN = r"""
CREATE FUNCTION case_event_hash(r case_events) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(
    r.prev_hash || '|' || r.id || '|' || r.case_id || '|' ||
    (extract(epoch FROM r.at) * 1000000)::bigint || '|' ||
    coalesce(r.actor_id::text, '') || '|' || coalesce(r.post_id::text, '') || '|' ||
    r.action || '|' || coalesce(r.from_status, '') || '|' || coalesce(r.to_status, '') || '|' ||
    r.note || '|' || r.detail::text,
  'UTF8')), 'hex')
$$;

-- After case_events_district (triggers fire by name): the district is known.
CREATE FUNCTION case_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(7246003, hashint8(NEW.case_id));
  NEW.id := nextval(pg_get_serial_sequence('case_events', 'id'));
  NEW.prev_hash := coalesce(
    (SELECT e.hash FROM case_events e
     WHERE e.case_id = NEW.case_id AND e.district_id = NEW.district_id
     ORDER BY e.id DESC LIMIT 1), repeat('0', 64));
  NEW.hash := case_event_hash(NEW);
  RETURN NEW;
END $$;

CREATE FUNCTION case_events_refuse_edit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.id, NEW.case_id, NEW.at, NEW.actor_id, NEW.post_id, NEW.action, NEW.from_status,
      NEW.to_status, NEW.note, NEW.detail, NEW.prev_hash, NEW.hash)
     IS DISTINCT FROM
     (OLD.id, OLD.case_id, OLD.at, OLD.actor_id, OLD.post_id, OLD.action, OLD.from_status,
      OLD.to_status, OLD.note, OLD.detail, OLD.prev_hash, OLD.hash) THEN
    RAISE EXCEPTION 'case_events are append-only' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
"""

_BACKFILL = r"""
DO $$
DECLARE
  r case_events;
  prev text;
  last_case bigint := NULL;
BEGIN
  FOR r IN SELECT * FROM case_events ORDER BY case_id, id LOOP
    IF last_case IS DISTINCT FROM r.case_id THEN
      prev := repeat('0', 64);
      last_case := r.case_id;
    END IF;
    r.prev_hash := prev;
    prev := case_event_hash(r);
    UPDATE case_events SET prev_hash = r.prev_hash, hash = prev
    WHERE id = r.id AND district_id = r.district_id;
  END LOOP;
END $$;
"""

_SATISFACTION_OLD = (
    "c.on_spot, c.rework_count, c.reopen_count, c.satisfaction, c.lead_department_id,"
)
_SATISFACTION_NEW = """c.on_spot, c.rework_count, c.reopen_count,
       (CASE WHEN EXISTS (
                SELECT 1 FROM case_events e
                WHERE e.case_id = c.id AND e.district_id = c.district_id
                  AND e.action = 'evaluate' AND e.detail->>'satisfaction' = 'dissatisfied')
             THEN 'dissatisfied'
             ELSE coalesce(c.satisfaction, (
                SELECT e.detail->>'satisfaction' FROM case_events e
                WHERE e.case_id = c.id AND e.district_id = c.district_id
                  AND e.action = 'evaluate'
                ORDER BY e.id DESC LIMIT 1))
        END)::varchar(20) AS satisfaction,
       c.lead_department_id,"""
_DEPT_OLD = "c.satisfaction, a.id AS assignment_id,"
_DEPT_NEW = """(CASE WHEN EXISTS (
                SELECT 1 FROM case_events e
                WHERE e.case_id = c.id AND e.district_id = c.district_id
                  AND e.action = 'evaluate' AND e.detail->>'satisfaction' = 'dissatisfied')
             THEN 'dissatisfied'
             ELSE coalesce(c.satisfaction, (
                SELECT e.detail->>'satisfaction' FROM case_events e
                WHERE e.case_id = c.id AND e.district_id = c.district_id
                  AND e.action = 'evaluate'
                ORDER BY e.id DESC LIMIT 1))
        END)::varchar(20) AS satisfaction, a.id AS assignment_id,"""


_CASE_STAR = "SELECT a.* FROM case_assignments a"
_DEPT_STAR = "SELECT DISTINCT ON (case_id, department_id) *"
_COLUMNS = (
    "id, case_id, department_id, role, state, dispatched_at, sign_in_due, signed_in_at, "
    "handle_due, feedback_at"
)
_LEAD_COLUMNS = ", ".join(f"a.{c.strip()}" for c in _COLUMNS.split(","))


def _views(new: bool) -> None:
    """The fact views of 0007, with (new) or without the kept rating; then the facts rebuilt."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_evaluation_0007", Path(__file__).with_name("20261130_0007_evaluation.py")
    )
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    case_v: str = m.CASE_FACTS_V
    dept_v: str = m.DEPT_FACTS_V
    assert _SATISFACTION_OLD in case_v and _DEPT_OLD in dept_v
    # Name the assignment columns the views read instead of `*`: a view keeps the columns `*`
    # had when it was created, and depends on all of them (0011's district_id, this migration's
    # escalated_at), which would stop their downgrades.
    assert _CASE_STAR in case_v and _DEPT_STAR in dept_v
    case_v = case_v.replace(_CASE_STAR, f"SELECT {_LEAD_COLUMNS} FROM case_assignments a")
    dept_v = dept_v.replace(_DEPT_STAR, f"SELECT DISTINCT ON (case_id, department_id) {_COLUMNS}")
    if new:
        case_v = case_v.replace(_SATISFACTION_OLD, _SATISFACTION_NEW)
        dept_v = dept_v.replace(_DEPT_OLD, _DEPT_NEW)
    op.execute(case_v.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    op.execute(dept_v.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"))
    op.execute("SELECT stats_rebuild()")


def _drop_views() -> None:
    """The fact views read `case_assignments.*`: they depend on every column of it, and must go
    before a column does (they are created again after)."""
    op.execute("DROP VIEW stats_dept_facts_v")
    op.execute("DROP VIEW stats_case_facts_v")


def upgrade() -> None:
    op.execute("ALTER TABLE case_assignments ADD COLUMN escalated_at timestamptz")
    op.execute(
        """
        UPDATE case_assignments a SET escalated_at = coalesce(
            (SELECT max(e.at) FROM case_events e
             WHERE e.case_id = a.case_id AND e.district_id = a.district_id
               AND e.action = 'escalated' AND (e.detail->>'assignment_id')::bigint = a.id),
            CASE WHEN a.state = 'dispatched' THEN a.sign_in_due ELSE a.handle_due END)
        WHERE a.escalation_level > 0
        """
    )
    op.execute("ALTER TABLE grid_boundaries ADD COLUMN created_by bigint REFERENCES users(id)")
    op.execute("ALTER TABLE case_events ADD COLUMN prev_hash text, ADD COLUMN hash text")
    for statement in _CHAIN.split("\n\n"):
        op.execute(statement)
    op.execute(_BACKFILL)
    op.execute("ALTER TABLE case_events ALTER COLUMN prev_hash SET NOT NULL")
    op.execute("ALTER TABLE case_events ALTER COLUMN hash SET NOT NULL")
    op.execute(
        "CREATE TRIGGER case_events_hash_chain BEFORE INSERT ON case_events "
        "FOR EACH ROW EXECUTE FUNCTION case_events_chain()"
    )
    op.execute(
        "CREATE TRIGGER case_events_append_only BEFORE UPDATE ON case_events "
        "FOR EACH ROW EXECUTE FUNCTION case_events_refuse_edit()"
    )
    _views(new=True)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_events_append_only ON case_events")
    op.execute("DROP TRIGGER IF EXISTS case_events_hash_chain ON case_events")
    op.execute("DROP FUNCTION IF EXISTS case_events_refuse_edit()")
    op.execute("DROP FUNCTION IF EXISTS case_events_chain()")
    op.execute("DROP FUNCTION IF EXISTS case_event_hash(case_events)")
    _drop_views()
    op.execute("ALTER TABLE case_events DROP COLUMN hash, DROP COLUMN prev_hash")
    op.execute("ALTER TABLE grid_boundaries DROP COLUMN created_by")
    op.execute("ALTER TABLE case_assignments DROP COLUMN escalated_at")
    _views(new=False)

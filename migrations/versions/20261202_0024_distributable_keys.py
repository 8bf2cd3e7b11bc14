"""Keys Citus accepts (issue 18): no ON UPDATE CASCADE on keys that pair the district.

Citus refuses `ON UPDATE CASCADE` (and SET NULL / SET DEFAULT on update) on a foreign key that
includes the distribution column, and it never updates a distribution column. 0014 moved a case's
rows to another district through such cascades. This migration:

* rebuilds those keys as `ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE` (checked at each
  statement as before; the merged copy's key without the delete action);
* moves the rows of a case placed in another district with a BEFORE trigger (plain PostgreSQL
  only: on Citus the update of `cases.district_id` itself is refused), which defers those keys
  for the rest of the transaction and updates every child row, so the keys hold again at commit;
* the timeline's hash is computed from the step's fields (`case_event_hash_of`), not from a
  `case_events` row: on a Citus shard the trigger's NEW is a row of the shard's own type, for
  which `case_event_hash(case_events)` does not exist (the hash itself is unchanged);
* drops `ON UPDATE CASCADE` from `categories.lead_department → departments(code)` (both become
  reference tables; a department's code is never renamed by the app).

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, name, columns, referenced table, referenced columns, delete action)
KEYS = (
    ("case_events", "fk_case_events_case_id_cases", "case_id", "cases", "id", "CASCADE"),
    ("attachments", "fk_attachments_case_id_cases", "case_id", "cases", "id", "CASCADE"),
    (
        "attachments",
        "fk_attachments_event_id_case_events",
        "event_id",
        "case_events",
        "id",
        "CASCADE",
    ),
    (
        "case_assignments",
        "fk_case_assignments_case_id_cases",
        "case_id",
        "cases",
        "id",
        "CASCADE",
    ),
    ("events", "fk_events_case_id_cases", "case_id", "cases", "id", "CASCADE"),
    (
        "webhook_deliveries",
        "fk_webhook_deliveries_event_id_events",
        "event_id",
        "events",
        "id",
        "CASCADE",
    ),
    (
        "open311_requests",
        "fk_open311_requests_case_id_cases",
        "case_id",
        "cases",
        "id",
        "CASCADE",
    ),
    ("cases", "fk_cases_duplicate_of_cases", "duplicate_of", "cases", "id", None),
)
_NAMES = ", ".join(name for _, name, *_ in KEYS)
# (child table, the column naming the case)
_CHILDREN = (
    ("case_events", "case_id"),
    ("attachments", "case_id"),
    ("case_assignments", "case_id"),
    ("events", "case_id"),
    ("open311_requests", "case_id"),
    ("event_intents", "case_id"),
    ("cases", "duplicate_of"),
)

_MOVE = f"""
CREATE OR REPLACE FUNCTION cases_district_move_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The keys that pair the district hold again once every row has moved (at commit).
    SET CONSTRAINTS {_NAMES} DEFERRED;
    {{body}}
    UPDATE webhook_deliveries w SET district_id = NEW.district_id
      FROM events e
     WHERE e.case_id = NEW.id AND w.event_id = e.id AND w.district_id = OLD.district_id;
    RETURN NEW;
END $$
""".format(
    body="\n    ".join(
        f"UPDATE {t} SET district_id = NEW.district_id WHERE {c} = NEW.id "
        "AND district_id = OLD.district_id;"
        for t, c in _CHILDREN
    )
)

_MOVED_EVENT_INTENTS = """
CREATE OR REPLACE FUNCTION cases_district_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_intents SET district_id = NEW.district_id WHERE case_id = NEW.id;
    RETURN NULL;
END $$
"""


_HASH_OF = r"""
CREATE FUNCTION case_event_hash_of(
    prev_hash text, id bigint, case_id bigint, at timestamptz, actor_id bigint, post_id bigint,
    action text, from_status text, to_status text, note text, detail jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(
    prev_hash || '|' || id || '|' || case_id || '|' ||
    (extract(epoch FROM at) * 1000000)::bigint || '|' ||
    coalesce(actor_id::text, '') || '|' || coalesce(post_id::text, '') || '|' ||
    action || '|' || coalesce(from_status, '') || '|' || coalesce(to_status, '') || '|' ||
    note || '|' || detail::text,
  'UTF8')), 'hex')
$$;
CREATE OR REPLACE FUNCTION case_event_hash(r case_events) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT case_event_hash_of(r.prev_hash, r.id, r.case_id, r.at, r.actor_id, r.post_id,
                            r.action, r.from_status, r.to_status, r.note, r.detail)
$$;
CREATE OR REPLACE FUNCTION case_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(7246003, hashint8(NEW.case_id));
  NEW.id := nextval(pg_get_serial_sequence('case_events', 'id'));
  NEW.prev_hash := coalesce(
    (SELECT e.hash FROM case_events e
     WHERE e.case_id = NEW.case_id AND e.district_id = NEW.district_id
     ORDER BY e.id DESC LIMIT 1), repeat('0', 64));
  NEW.hash := case_event_hash_of(NEW.prev_hash, NEW.id, NEW.case_id, NEW.at, NEW.actor_id,
                                 NEW.post_id, NEW.action, NEW.from_status, NEW.to_status,
                                 NEW.note, NEW.detail);
  RETURN NEW;
END
$$;
"""
_HASH_0018 = r"""
CREATE OR REPLACE FUNCTION case_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(7246003, hashint8(NEW.case_id));
  NEW.id := nextval(pg_get_serial_sequence('case_events', 'id'));
  NEW.prev_hash := coalesce(
    (SELECT e.hash FROM case_events e
     WHERE e.case_id = NEW.case_id AND e.district_id = NEW.district_id
     ORDER BY e.id DESC LIMIT 1), repeat('0', 64));
  NEW.hash := case_event_hash(NEW);
  RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION case_event_hash(r case_events) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(
    r.prev_hash || '|' || r.id || '|' || r.case_id || '|' ||
    (extract(epoch FROM r.at) * 1000000)::bigint || '|' ||
    coalesce(r.actor_id::text, '') || '|' || coalesce(r.post_id::text, '') || '|' ||
    r.action || '|' || coalesce(r.from_status, '') || '|' || coalesce(r.to_status, '') || '|' ||
    r.note || '|' || r.detail::text,
  'UTF8')), 'hex')
$$;
DROP FUNCTION case_event_hash_of(text, bigint, bigint, timestamptz, bigint, bigint, text, text,
                                 text, text, jsonb);
"""


def _rebuild(deferrable: bool) -> None:
    for table, name, *_ in KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, name, col, ref, ref_col, on_delete in KEYS:
        if deferrable:
            actions = (f"ON DELETE {on_delete} " if on_delete else "") + (
                "DEFERRABLE INITIALLY IMMEDIATE"
            )
        else:
            actions = (f"ON DELETE {on_delete} " if on_delete else "") + "ON UPDATE CASCADE"
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, district_id) "
            f"REFERENCES {ref} ({ref_col}, district_id) {actions}"
        )


def upgrade() -> None:
    _rebuild(deferrable=True)
    for statement in _HASH_OF.split("\n$$;\n")[:-1]:
        op.execute(statement + "\n$$")
    op.execute(_MOVE)
    # The rows move before the case (BEFORE trigger); 0011's AFTER trigger (event intents) is
    # folded into it.
    op.execute("DROP TRIGGER IF EXISTS cases_district_moved ON cases")
    op.execute("DROP FUNCTION IF EXISTS cases_district_moved()")
    op.execute(
        "CREATE TRIGGER cases_district_move_rows BEFORE UPDATE OF district_id ON cases "
        "FOR EACH ROW WHEN (OLD.district_id IS DISTINCT FROM NEW.district_id) "
        "EXECUTE FUNCTION cases_district_move_rows()"
    )
    op.execute(
        "ALTER TABLE categories DROP CONSTRAINT fk_categories_lead_department_departments, "
        "ADD CONSTRAINT fk_categories_lead_department_departments FOREIGN KEY (lead_department) "
        "REFERENCES departments (code)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE categories DROP CONSTRAINT fk_categories_lead_department_departments, "
        "ADD CONSTRAINT fk_categories_lead_department_departments FOREIGN KEY (lead_department) "
        "REFERENCES departments (code) ON UPDATE CASCADE"
    )
    op.execute("DROP TRIGGER IF EXISTS cases_district_move_rows ON cases")
    op.execute("DROP FUNCTION IF EXISTS cases_district_move_rows()")
    op.execute(_MOVED_EVENT_INTENTS)
    op.execute(
        "CREATE TRIGGER cases_district_moved AFTER UPDATE OF district_id ON cases FOR EACH ROW "
        "WHEN (OLD.district_id IS DISTINCT FROM NEW.district_id) "
        "EXECUTE FUNCTION cases_district_moved()"
    )
    _rebuild(deferrable=False)
    *functions, drop = _HASH_0018.split("\n$$;\n")
    for statement in functions:
        op.execute(statement + "\n$$")
    op.execute(drop)

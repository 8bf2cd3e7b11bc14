"""Keys Citus accepts (issue 18): no ON UPDATE CASCADE on keys that pair the district.

Citus refuses `ON UPDATE CASCADE` (and SET NULL / SET DEFAULT on update) on a foreign key that
includes the distribution column, and it never updates a distribution column. 0014 moved a case's
rows to another district through such cascades. This migration:

* rebuilds those keys as `ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE` (checked at each
  statement as before; the merged copy's key without the delete action);
* moves the rows of a case placed in another district with a BEFORE trigger (plain PostgreSQL
  only: on Citus the update of `cases.district_id` itself is refused), which defers those keys
  for the rest of the transaction and updates every child row, so the keys hold again at commit;
* drops `ON UPDATE CASCADE` from `categories.lead_department → departments(code)` (both become
  reference tables; a department's code is never renamed by the app).

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0020"
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

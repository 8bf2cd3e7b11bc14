"""The district in the keys of every case-side table (issue 11).

Citus (docs/scaling.md) distributes the case-side tables on `district_id`; it requires the
distribution column in every primary and unique key, and foreign keys between distributed tables
that include it. This migration makes that true now, so that distributing is configuration:

* primary keys `(id, district_id)` (the id first: every lookup by id still uses the key's index);
* unique keys gain `district_id` (it is a function of the case, so nothing that was unique
  before stops being unique: the case number and the Open311 token come from global sequences
  and random UUIDs);
* foreign keys between case-side tables are `(case_id, district_id) → cases (id, district_id)`
  (and `(event_id, district_id)` for photos and webhook deliveries): a row cannot name another
  district's case, and a case moved to another district takes its rows along (ON UPDATE CASCADE,
  which replaces the moving trigger of 0011 for these tables);
* the evaluation facts are rebuilt by their own triggers when a case moves (delete and insert,
  so the monthly rollups see the move), so their key is checked at commit instead of cascaded;
* the outbox (`events`, `webhook_deliveries`, `event_intents`) carries the district NOT NULL: a
  system notice belongs to the district it is about (the calendar warning is now one per
  district).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → primary key columns after this migration (before: the same without district_id).
KEYS = {
    "cases": ("id", "district_id"),
    "case_events": ("id", "district_id"),
    "case_assignments": ("id", "district_id"),
    "attachments": ("id", "district_id"),
    "events": ("id", "district_id"),
    "event_intents": ("id", "district_id"),
    "webhook_deliveries": ("id", "district_id"),
    "open311_requests": ("case_id", "district_id"),
    "stats_case_facts": ("id", "district_id"),
    "stats_dept_facts": ("id", "department_id", "district_id"),
}
_CASCADE = "ON DELETE CASCADE ON UPDATE CASCADE"
_FACT = "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
# (table, name, columns, referenced table, referenced columns, actions)
FOREIGN = (
    ("case_events", "fk_case_events_case_id_cases", "case_id", "cases", "id", "ON DELETE CASCADE"),
    ("attachments", "fk_attachments_case_id_cases", "case_id", "cases", "id", "ON DELETE CASCADE"),
    (
        "attachments",
        "fk_attachments_event_id_case_events",
        "event_id",
        "case_events",
        "id",
        "ON DELETE CASCADE",
    ),
    (
        "case_assignments",
        "fk_case_assignments_case_id_cases",
        "case_id",
        "cases",
        "id",
        "ON DELETE CASCADE",
    ),
    ("events", "fk_events_case_id_cases", "case_id", "cases", "id", "ON DELETE CASCADE"),
    (
        "webhook_deliveries",
        "fk_webhook_deliveries_event_id_events",
        "event_id",
        "events",
        "id",
        "ON DELETE CASCADE",
    ),
    (
        "open311_requests",
        "fk_open311_requests_case_id_cases",
        "case_id",
        "cases",
        "id",
        "ON DELETE CASCADE",
    ),
    ("stats_case_facts", "fk_stats_case_facts_id_cases", "id", "cases", "id", "ON DELETE CASCADE"),
    ("stats_dept_facts", "fk_stats_dept_facts_id_cases", "id", "cases", "id", "ON DELETE CASCADE"),
    ("cases", "fk_cases_duplicate_of_cases", "duplicate_of", "cases", "id", ""),
)
# (table, constraint or index name, columns before, partial-index predicate or None)
UNIQUE = (
    ("cases", "uq_cases_number", "number", None),
    ("attachments", "uq_attachments_event_sha", "event_id, sha256", None),
    ("open311_requests", "uq_open311_requests_token", "token", None),
    (
        "case_assignments",
        "uq_case_assignments_open",
        "case_id, department_id",
        "state NOT IN ('returned', 'withdrawn', 'done')",
    ),
)

# The rebuild of 0007 truncates the facts, which PostgreSQL refuses while their keys have checks
# pending at commit (facts written earlier in the same transaction): run those checks first, and
# defer the keys again afterwards.
_FACT_KEYS = "fk_stats_case_facts_id_cases, fk_stats_dept_facts_id_cases"
_REBUILD = """
CREATE OR REPLACE FUNCTION stats_rebuild() RETURNS void LANGUAGE {lang} AS $$
  {before}
  TRUNCATE stats_case_facts, stats_dept_facts, stats_case_monthly, stats_dept_monthly,
           stats_hotspot_monthly;
  INSERT INTO stats_case_facts SELECT * FROM stats_case_facts_v;
  INSERT INTO stats_dept_facts SELECT * FROM stats_dept_facts_v;
  {after}
$$
"""

_FIRST_DISTRICT = "(SELECT id FROM areas WHERE level = 'district' ORDER BY id LIMIT 1)"

# The publishing trigger of 0012, with the district on each webhook delivery.
_PUBLISH = """
CREATE OR REPLACE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    -- app.events.outbox.ORDER_LOCK: ids are handed out in commit order.
    PERFORM pg_advisory_xact_lock(7246002);
    IF NEW.case_id IS NULL THEN
        -- Not about a case (a community's task, a warning to administrators): who sees
        -- it comes with the intent.
        WITH e AS (
            INSERT INTO events (type, district_id, area_ids, department_ids, payload)
            VALUES (NEW.type, NEW.district_id, NEW.area_ids, NEW.department_ids, NEW.payload)
            RETURNING id, district_id, department_ids
        ), d AS (
            INSERT INTO webhook_deliveries (subscription_id, event_id{d_col})
            SELECT s.id, e.id{d_val} FROM e JOIN webhook_subscriptions s
              ON s.active AND s.department_id = ANY(e.department_ids)
             AND (cardinality(s.event_types) = 0 OR NEW.type = ANY(s.event_types))
        )
        SELECT id INTO event_id FROM e;
    ELSE
        WITH e AS (
            INSERT INTO events
                (type, case_id, district_id, grid_id, area_ids, department_ids, payload)
            SELECT NEW.type, c.id, c.district_id, c.grid_id,
                   array_remove(ARRAY[c.community_id, c.street_id, c.district_id], NULL),
                   array(SELECT DISTINCT a.department_id FROM case_assignments a
                         WHERE a.case_id = c.id AND a.state <> 'withdrawn'),
                   NEW.payload
            FROM cases c WHERE c.id = NEW.case_id
            RETURNING id, district_id, department_ids
        ), d AS (
            INSERT INTO webhook_deliveries (subscription_id, event_id{d_col})
            SELECT s.id, e.id{d_val} FROM e JOIN webhook_subscriptions s
              ON s.active AND s.department_id = ANY(e.department_ids)
             AND (cardinality(s.event_types) = 0 OR NEW.type = ANY(s.event_types))
        )
        SELECT id INTO event_id FROM e;
    END IF;
    IF event_id IS NOT NULL THEN
        PERFORM pg_notify('wangge_events', event_id::text);
    END IF;
    DELETE FROM event_intents WHERE id = NEW.id;
    RETURN NULL;
END
$$
"""

# 0011's trigger moved every child with its case; the cascading keys do that now, except for
# the intents (not yet events; no key to the case, since they are UNLOGGED).
_MOVED = """
CREATE OR REPLACE FUNCTION cases_district_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {body}
    RETURN NULL;
END $$
"""
_MOVED_0011 = ("case_events", "case_assignments", "attachments", "events", "open311_requests")


def _moves(tables: Sequence[str]) -> str:
    return _MOVED.format(
        body="\n    ".join(
            f"UPDATE {t} SET district_id = NEW.district_id WHERE case_id = NEW.id;" for t in tables
        )
    )


def upgrade() -> None:
    # The outbox and the facts: every row has its district.
    op.execute(f"UPDATE events SET district_id = {_FIRST_DISTRICT} WHERE district_id IS NULL")
    op.execute(
        f"UPDATE event_intents SET district_id = {_FIRST_DISTRICT} WHERE district_id IS NULL"
    )
    op.execute(
        "ALTER TABLE webhook_deliveries ADD COLUMN district_id bigint "
        "CONSTRAINT fk_webhook_deliveries_district_id_areas REFERENCES areas (id)"
    )
    op.execute(
        "UPDATE webhook_deliveries w SET district_id = e.district_id FROM events e "
        "WHERE e.id = w.event_id"
    )
    for table in ("stats_case_facts", "stats_dept_facts"):
        op.execute(
            f"UPDATE {table} f SET district_id = c.district_id FROM cases c "
            "WHERE c.id = f.id AND f.district_id IS DISTINCT FROM c.district_id"
        )
    for table in (
        "events",
        "event_intents",
        "webhook_deliveries",
        "stats_case_facts",
        "stats_dept_facts",
    ):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN district_id SET NOT NULL")
    op.execute(_PUBLISH.format(d_col=", district_id", d_val=", e.district_id"))

    # Keys: drop the foreign keys that lean on the old primary keys, rebuild the keys with the
    # district, then the foreign keys with it.
    for table, name, *_ in FOREIGN:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, cols in KEYS.items():
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(cols)})"
        )
    for table, name, cols, where in UNIQUE:
        if where is None:
            op.execute(
                f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                f"ADD CONSTRAINT {name} UNIQUE ({cols}, district_id)"
            )
        else:
            op.execute(f"DROP INDEX {name}")
            op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}, district_id) WHERE {where}")
    for table, name, col, ref, ref_col, _ in FOREIGN:
        actions = _FACT if table.startswith("stats_") else _CASCADE
        if table == "cases":
            actions = "ON UPDATE CASCADE"
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, district_id) "
            f"REFERENCES {ref} ({ref_col}, district_id) {actions}"
        )
    op.execute(_moves(("event_intents",)))
    op.execute(
        _REBUILD.format(
            lang="plpgsql",
            before=f"BEGIN SET CONSTRAINTS {_FACT_KEYS} IMMEDIATE;",
            after=f"SET CONSTRAINTS {_FACT_KEYS} DEFERRED; END",
        )
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION stats_rebuild()")
    op.execute(_REBUILD.format(lang="sql", before="", after=""))
    op.execute(_moves(_MOVED_0011))
    for table, name, *_ in FOREIGN:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, name, cols, where in UNIQUE:
        if where is None:
            op.execute(
                f"ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} UNIQUE ({cols})"
            )
        else:
            op.execute(f"DROP INDEX {name}")
            op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}) WHERE {where}")
    for table, cols in KEYS.items():
        old = ", ".join(c for c in cols if c != "district_id")
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({old})"
        )
    for table, name, col, ref, ref_col, actions in FOREIGN:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}) "
            f"REFERENCES {ref} ({ref_col}) {actions}"
        )
    op.execute(_PUBLISH.format(d_col="", d_val=""))
    op.execute("ALTER TABLE webhook_deliveries DROP COLUMN district_id")
    for table in ("events", "event_intents", "stats_case_facts", "stats_dept_facts"):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN district_id DROP NOT NULL")

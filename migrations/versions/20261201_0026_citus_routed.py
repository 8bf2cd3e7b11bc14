"""What a Citus cluster needs of the outbox and the workers' tasks (issue 18).

* The event intents stay on the coordinator. `event_intents` (UNLOGGED, never a committed row)
  loses its key to `areas`, so `wangge distribute` leaves it a plain table of the coordinator
  (`app.distribute.COORDINATOR`): its deferred trigger then runs on the coordinator at COMMIT,
  where the app's sessions are. That makes the coordinator the events' sequencer: the order lock
  (an advisory lock of the coordinator, held through the commit, which on Citus includes the
  workers' COMMIT PREPARED) and the id (`nextval('events_id_seq')`, the coordinator's sequence,
  taken explicitly in the trigger) give ids in commit order across the cluster, and the NOTIFY is
  sent by the node the app LISTENs on. On plain PostgreSQL nothing changes but the text.
* The trigger's statements pair the district (`cases`, `case_assignments` by `district_id`), so
  on Citus each is a router statement on the case's shard.

* Migration 0023 (`worker_tasks`) was written beside 0024 and kept `ON UPDATE CASCADE` on its key
`(case_id, district_id) → cases`, which Citus refuses on a key that includes the distribution
column (`wangge distribute` failed on it). As for the other case-side keys (0024): the key becomes
`ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE`, and the BEFORE trigger that moves a case's rows
to another district (plain PostgreSQL only) defers it and moves the tasks too.

Revision ID: 0026
Revises: 0024
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "fk_worker_tasks_case_id_cases"
# The keys 0024 made deferrable, and this one.
_NAMES = ", ".join(
    (
        "fk_case_events_case_id_cases",
        "fk_attachments_case_id_cases",
        "fk_attachments_event_id_case_events",
        "fk_case_assignments_case_id_cases",
        "fk_events_case_id_cases",
        "fk_webhook_deliveries_event_id_events",
        "fk_open311_requests_case_id_cases",
        "fk_cases_duplicate_of_cases",
        _NAME,
    )
)
# (child table, the column naming the case): 0024's, and the tasks.
_CHILDREN = (
    ("case_events", "case_id"),
    ("attachments", "case_id"),
    ("case_assignments", "case_id"),
    ("events", "case_id"),
    ("open311_requests", "case_id"),
    ("event_intents", "case_id"),
    ("cases", "duplicate_of"),
    ("worker_tasks", "case_id"),
)

_PUBLISH = """
CREATE OR REPLACE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
    grid bigint := NEW.grid_id;
    areas bigint[] := NEW.area_ids;
    deps bigint[] := NEW.department_ids;
BEGIN
    -- app.events.outbox.ORDER_LOCK: ids are handed out in commit order (on Citus: the lock and
    -- the sequence are the coordinator's, where this trigger runs).
    PERFORM pg_advisory_xact_lock(7246002);
    IF NEW.case_id IS NOT NULL THEN
        SELECT c.grid_id, array_remove(ARRAY[c.community_id, c.street_id, c.district_id], NULL)
          INTO grid, areas
          FROM cases c WHERE c.id = NEW.case_id AND c.district_id = NEW.district_id;
        IF NOT FOUND THEN
            DELETE FROM event_intents WHERE id = NEW.id;
            RETURN NULL;
        END IF;
        SELECT coalesce(array_agg(DISTINCT a.department_id), '{}') INTO deps
          FROM case_assignments a
         WHERE a.case_id = NEW.case_id AND a.district_id = NEW.district_id
           AND a.state <> 'withdrawn';
    END IF;
    event_id := nextval(pg_get_serial_sequence('events', 'id'));
    INSERT INTO events (id, type, case_id, district_id, grid_id, area_ids, department_ids, payload)
    VALUES (event_id, NEW.type, NEW.case_id, NEW.district_id, grid, areas, deps, NEW.payload);
    INSERT INTO webhook_deliveries (subscription_id, event_id, district_id)
    SELECT s.id, event_id, NEW.district_id FROM webhook_subscriptions s
     WHERE s.active AND s.department_id = ANY(deps)
       AND (cardinality(s.event_types) = 0 OR NEW.type = ANY(s.event_types));
    PERFORM pg_notify('wangge_events', event_id::text);
    DELETE FROM event_intents WHERE id = NEW.id;
    RETURN NULL;
END
$$
"""
# 0023's text, for the downgrade.
_PUBLISH_0023 = """
CREATE OR REPLACE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7246002);
    IF NEW.case_id IS NULL THEN
        WITH e AS (
            INSERT INTO events (type, district_id, grid_id, area_ids, department_ids, payload)
            VALUES (NEW.type, NEW.district_id, NEW.grid_id, NEW.area_ids, NEW.department_ids,
                    NEW.payload)
            RETURNING id, district_id, department_ids
        ), d AS (
            INSERT INTO webhook_deliveries (subscription_id, event_id, district_id)
            SELECT s.id, e.id, e.district_id FROM e JOIN webhook_subscriptions s
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
            INSERT INTO webhook_deliveries (subscription_id, event_id, district_id)
            SELECT s.id, e.id, e.district_id FROM e JOIN webhook_subscriptions s
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
_INTENT_KEY = "fk_event_intents_district_id_areas"

_MOVE = """
CREATE OR REPLACE FUNCTION cases_district_move_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The keys that pair the district hold again once every row has moved (at commit).
    SET CONSTRAINTS {names} DEFERRED;
    {body}
    UPDATE webhook_deliveries w SET district_id = NEW.district_id
      FROM events e
     WHERE e.case_id = NEW.id AND w.event_id = e.id AND w.district_id = OLD.district_id;
    RETURN NEW;
END $$
"""


def _move(children: tuple[tuple[str, str], ...], names: str) -> str:
    return _MOVE.format(
        names=names,
        body="\n    ".join(
            f"UPDATE {t} SET district_id = NEW.district_id WHERE {c} = NEW.id "
            "AND district_id = OLD.district_id;"
            for t, c in children
        ),
    )


def _key(actions: str) -> None:
    op.execute(
        f"ALTER TABLE worker_tasks DROP CONSTRAINT {_NAME}, ADD CONSTRAINT {_NAME} "
        f"FOREIGN KEY (case_id, district_id) REFERENCES cases (id, district_id) {actions}"
    )


def upgrade() -> None:
    _key("ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE")
    op.execute(_move(_CHILDREN, _NAMES))
    op.execute(f"ALTER TABLE event_intents DROP CONSTRAINT {_INTENT_KEY}")
    op.execute(_PUBLISH)


def downgrade() -> None:
    op.execute(_PUBLISH_0023)
    op.execute(
        f"ALTER TABLE event_intents ADD CONSTRAINT {_INTENT_KEY} FOREIGN KEY (district_id) "
        "REFERENCES areas (id)"
    )
    op.execute(_move(_CHILDREN[:-1], _NAMES.rsplit(", ", 1)[0]))
    _key("ON DELETE CASCADE ON UPDATE CASCADE")

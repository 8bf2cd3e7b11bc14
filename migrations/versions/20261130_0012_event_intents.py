"""Events get their ids at commit (a deferred trigger publishes queued intents); an idempotency
key remembers what its first request created.

Before, an event writer took the order lock when it wrote its event and held it through the
rest of its transaction (the client's round trips included), so every intake and loop action
queued behind the slowest one. Now the writer inserts into `event_intents` (no lock) and a
DEFERRABLE INITIALLY DEFERRED constraint trigger publishes each intent at COMMIT: it takes the
order lock, inserts the `events` row (its id from the sequence, so ids still follow commit
order), its webhook deliveries and the NOTIFY, and deletes the intent. The lock is now held only
for the server's own commit work.

`idempotency_keys.result_id`: case intake claims the key, creates the case and records its id in
one statement, then stores the response; a retry after a crash in between gets that case back.

`event_intents` is UNLOGGED: its rows never outlive their transaction (published and deleted at
commit, or rolled back), so there is nothing for crash recovery to keep.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE idempotency_keys ADD COLUMN result_id bigint")
    op.execute(
        """
        CREATE UNLOGGED TABLE event_intents (
            id bigserial CONSTRAINT pk_event_intents PRIMARY KEY,
            type varchar(40) NOT NULL,
            case_id bigint,
            district_id bigint CONSTRAINT fk_event_intents_district_id_areas REFERENCES areas (id),
            area_ids bigint[] NOT NULL DEFAULT '{}',
            department_ids bigint[] NOT NULL DEFAULT '{}',
            payload jsonb NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
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
                    VALUES (NEW.type, NEW.district_id, NEW.area_ids, NEW.department_ids,
                            NEW.payload)
                    RETURNING id, department_ids
                ), d AS (
                    INSERT INTO webhook_deliveries (subscription_id, event_id)
                    SELECT s.id, e.id FROM e JOIN webhook_subscriptions s
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
                    RETURNING id, department_ids
                ), d AS (
                    INSERT INTO webhook_deliveries (subscription_id, event_id)
                    SELECT s.id, e.id FROM e JOIN webhook_subscriptions s
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
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER publish_at_commit AFTER INSERT ON event_intents
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION publish_event_intent()
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE event_intents")
    op.execute("DROP FUNCTION publish_event_intent()")
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN result_id")

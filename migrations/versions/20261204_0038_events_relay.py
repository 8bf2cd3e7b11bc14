"""Event publication off the writers' commit (issues 18 and 23): a relay, not a lock per commit.

Until now a deferred trigger published each intent at its writer's COMMIT under one advisory lock
(7246002) held through that commit, so that event ids follow commit order. Every transaction that
queued an event therefore committed one after another: at 32 phones reporting, the intake waited
23 ms on average for that lock (`pg_stat_statements` in `bench/bench_intake.py --quick`), and the
WAL flushes of concurrent commits could not be grouped.

Now:

- `event_intents` is a logged table whose rows are committed with their writer (an intent is the
  outbox: it survives a crash or a failover), with the writer's time (`at`, the event's time).
- The deferred trigger `publish_at_commit` only completes a case's intent at COMMIT: the case's
  grid and areas and the departments it is assigned to then (what the stream's scope and the
  webhooks read), as the old trigger read them. It takes no lock. A case removed in the same
  transaction takes its intent with it. The intake writes its `case.reported` intent complete
  (the new case's places, no department yet), so no trigger runs for it.
- The timeline's hash function is PL/pgSQL (the same text, so the same hashes), which keeps its
  plan: as SQL it was planned again at every step.
- `events_publish(n)` is the relay: under the order lock, held only by relays, it moves up to `n`
  committed intents (oldest first) into `events` with ids from the events' sequence, with a
  webhook delivery for each subscribing department and a NOTIFY per event, and deletes them (an
  intent whose case was removed since is deleted without an event). The lock is held through the
  relay's commit, so ids still follow the order in which events become visible: "everything
  after id N" never skips one. Each app process runs it in the background
  (`app.events.outbox.run_forever`), at once after its own writes and every
  `WANGGE_EVENTS_PUBLISH_SECONDS` for everyone else's. Without intents it returns without the
  lock.
- A transaction with `wangge.publish_now = on` publishes its own intents at its commit (the old
  behaviour, the lock included): the test suite's database sets it, so that a test in one
  rolled-back transaction sees its events at once.

On Citus the intents stay a plain table of the coordinator (0026), so the relay runs there, its
lock and the events' sequence are the coordinator's, and the NOTIFY is sent where the app LISTENs.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONE = """
CREATE FUNCTION event_publish(r event_intents) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint := nextval(pg_get_serial_sequence('events', 'id'));
BEGIN
    -- The caller holds the order lock (app.events.outbox.ORDER_LOCK) and deletes the intent.
    INSERT INTO events
        (id, at, type, case_id, district_id, grid_id, area_ids, department_ids, payload)
    VALUES (event_id, r.at, r.type, r.case_id, r.district_id, r.grid_id, r.area_ids,
            r.department_ids, r.payload);
    INSERT INTO webhook_deliveries (subscription_id, event_id, district_id)
    SELECT s.id, event_id, r.district_id FROM webhook_subscriptions s
     WHERE s.active AND s.department_id = ANY(r.department_ids)
       AND (cardinality(s.event_types) = 0 OR r.type = ANY(s.event_types));
    PERFORM pg_notify('wangge_events', event_id::text);
    RETURN event_id;
END
$$
"""

_RELAY = """
CREATE FUNCTION events_publish(n integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r event_intents;
    done bigint[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_intents) THEN
        RETURN 0;
    END IF;
    -- Held through this transaction's commit; each statement below sees every intent committed
    -- before it was granted.
    PERFORM pg_advisory_xact_lock(7246002);
    FOR r IN SELECT * FROM event_intents ORDER BY id LIMIT n LOOP
        -- A case removed since (its events go with it) leaves nothing to publish.
        IF r.case_id IS NULL OR EXISTS (
            SELECT 1 FROM cases c WHERE c.id = r.case_id AND c.district_id = r.district_id
        ) THEN
            PERFORM event_publish(r);
        END IF;
        done := done || r.id;
    END LOOP;
    DELETE FROM event_intents WHERE id = ANY(done);
    RETURN cardinality(done);
END
$$
"""

_FILL = """
CREATE OR REPLACE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r event_intents := NEW;
BEGIN
    IF NEW.case_id IS NOT NULL AND cardinality(NEW.area_ids) = 0 THEN
        SELECT c.grid_id, array_remove(ARRAY[c.community_id, c.street_id, c.district_id], NULL)
          INTO r.grid_id, r.area_ids
          FROM cases c WHERE c.id = NEW.case_id AND c.district_id = NEW.district_id;
        IF NOT FOUND THEN
            DELETE FROM event_intents WHERE id = NEW.id AND district_id = NEW.district_id;
            RETURN NULL;
        END IF;
        SELECT coalesce(array_agg(DISTINCT a.department_id), '{}') INTO r.department_ids
          FROM case_assignments a
         WHERE a.case_id = NEW.case_id AND a.district_id = NEW.district_id
           AND a.state <> 'withdrawn';
    END IF;
    IF current_setting('wangge.publish_now', true) = 'on' THEN
        PERFORM pg_advisory_xact_lock(7246002);
        IF NEW.case_id IS NULL OR EXISTS (
            SELECT 1 FROM cases c WHERE c.id = NEW.case_id AND c.district_id = NEW.district_id
        ) THEN
            PERFORM event_publish(r);
        END IF;
        DELETE FROM event_intents WHERE id = NEW.id AND district_id = NEW.district_id;
    ELSIF NEW.case_id IS NOT NULL AND cardinality(NEW.area_ids) = 0 THEN
        UPDATE event_intents
           SET grid_id = r.grid_id, area_ids = r.area_ids, department_ids = r.department_ids
         WHERE id = NEW.id AND district_id = NEW.district_id;
    END IF;
    RETURN NULL;
END
$$
"""

# 0026's text, for the downgrade.
_PUBLISH_0026 = """
CREATE OR REPLACE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
    grid bigint := NEW.grid_id;
    areas bigint[] := NEW.area_ids;
    deps bigint[] := NEW.department_ids;
BEGIN
    PERFORM pg_advisory_xact_lock(7246002);
    IF NEW.case_id IS NOT NULL AND cardinality(NEW.area_ids) = 0 THEN
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


# The trigger runs only where there is something to do: a case's intent that its writer did not
# complete (the intake completes its own), or a transaction that publishes at its own commit.
_WHEN = (
    "(NEW.case_id IS NOT NULL AND cardinality(NEW.area_ids) = 0)"
    " OR current_setting('wangge.publish_now', true) = 'on'"
)

# The timeline's hash (0024) in PL/pgSQL, which keeps its plan for the session: as SQL it is not
# inlined (its `||` on numbers is only stable) and PostgreSQL planned its body again at every
# step, 0.1 ms of the intake. The same text, so the same hashes.
_HASH_OF = r"""
CREATE OR REPLACE FUNCTION case_event_hash_of(
    prev_hash text, id bigint, case_id bigint, at timestamptz, actor_id bigint, post_id bigint,
    action text, from_status text, to_status text, note text, detail jsonb) RETURNS text
LANGUAGE {language} IMMUTABLE AS $$
  {head}encode(sha256(convert_to(
    prev_hash || '|' || id || '|' || case_id || '|' ||
    (extract(epoch FROM at) * 1000000)::bigint || '|' ||
    coalesce(actor_id::text, '') || '|' || coalesce(post_id::text, '') || '|' ||
    action || '|' || coalesce(from_status, '') || '|' || coalesce(to_status, '') || '|' ||
    note || '|' || detail::text,
  'UTF8')), 'hex'){tail}
$$
"""


def _trigger(when: str | None) -> None:
    op.execute("DROP TRIGGER publish_at_commit ON event_intents")
    op.execute(
        "CREATE CONSTRAINT TRIGGER publish_at_commit AFTER INSERT ON event_intents "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        + (f"WHEN ({when}) " if when else "")
        + "EXECUTE FUNCTION publish_event_intent()"
    )


def upgrade() -> None:
    op.execute("ALTER TABLE event_intents SET LOGGED")
    op.execute("ALTER TABLE event_intents ADD COLUMN at timestamptz NOT NULL DEFAULT now()")
    op.execute(_ONE)
    op.execute(_RELAY)
    op.execute(_FILL)
    _trigger(_WHEN)
    op.execute(_HASH_OF.format(language="plpgsql", head="BEGIN RETURN ", tail="; END"))


def downgrade() -> None:
    op.execute(_HASH_OF.format(language="sql", head="SELECT ", tail=""))
    op.execute("SELECT events_publish(2147483647)")  # what is queued becomes events first
    _trigger(None)
    op.execute(_PUBLISH_0026)
    op.execute("DROP FUNCTION events_publish(integer)")
    op.execute("DROP FUNCTION event_publish(event_intents)")
    op.execute("ALTER TABLE event_intents DROP COLUMN at")
    op.execute("ALTER TABLE event_intents SET UNLOGGED")

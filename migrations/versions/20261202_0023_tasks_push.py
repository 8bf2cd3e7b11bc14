"""The grid worker's duty and tasks, the admission list, Web Push (issue 19).

- `duty_slots` (排班): who is on duty in a community (or one grid of it) from when to when: a
  worker's account (full-time or part-time) or an in-service party member (双报到).
- `admission_lists` / `admission_items` (事务准入清单): a district's versioned list of the kinds
  of work departments may push down to communities and their workers, with the legal basis.
- `worker_tasks`: a task for a named person (on-site verification, callback 回访, inspection,
  meeting resolution) with its working-time deadline, escalated by the clock like the loop's
  assignments; a department's task outside the admission list waits for the street.
- `push_subscriptions`, `push_deliveries`, `push_cursor`: Web Push devices, the messages the
  outbox's events produce for them (at least once, retried, deferred to duty time), and how far
  the fan-out has read the events.
- `event_intents.grid_id`: an event not about a case may name its grid (a worker's task), so the
  grid's workers see it on their stream; the publishing trigger copies it.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PUBLISH = """
CREATE OR REPLACE FUNCTION publish_event_intent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    -- app.events.outbox.ORDER_LOCK: ids are handed out in commit order.
    PERFORM pg_advisory_xact_lock(7246002);
    IF NEW.case_id IS NULL THEN
        -- Not about a case (a community's task, a worker's task, a warning to administrators):
        -- who sees it comes with the intent.
        WITH e AS (
            INSERT INTO events (type, district_id, grid_id, area_ids, department_ids, payload)
            VALUES (NEW.type, NEW.district_id, {grid}, NEW.area_ids, NEW.department_ids,
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


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE duty_slots (
            id bigserial CONSTRAINT pk_duty_slots PRIMARY KEY,
            district_id bigint NOT NULL
                CONSTRAINT fk_duty_slots_district_id_areas REFERENCES areas (id),
            community_id bigint NOT NULL
                CONSTRAINT fk_duty_slots_community_id_areas REFERENCES areas (id),
            grid_id bigint CONSTRAINT fk_duty_slots_grid_id_grids REFERENCES grids (id)
                ON DELETE CASCADE,
            user_id bigint CONSTRAINT fk_duty_slots_user_id_users REFERENCES users (id)
                ON DELETE CASCADE,
            party_member_id bigint
                CONSTRAINT fk_duty_slots_party_member_id_party_members REFERENCES party_members (id)
                ON DELETE CASCADE,
            worker_type varchar(20) NOT NULL,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            note text NOT NULL DEFAULT '',
            created_by bigint CONSTRAINT fk_duty_slots_created_by_users REFERENCES users (id)
                ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT ck_duty_slots_who CHECK ((user_id IS NULL) <> (party_member_id IS NULL)),
            CONSTRAINT ck_duty_slots_worker_type
                CHECK (worker_type IN ('full_time', 'part_time', 'party_member')),
            CONSTRAINT ck_duty_slots_period
                CHECK (ends_at > starts_at AND ends_at <= starts_at + interval '24 hours')
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_duty_slots_community ON duty_slots (district_id, community_id, starts_at)"
    )
    op.execute(
        "CREATE INDEX ix_duty_slots_user ON duty_slots (district_id, user_id, starts_at) "
        "WHERE user_id IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE admission_lists (
            id bigserial CONSTRAINT pk_admission_lists PRIMARY KEY,
            district_id bigint NOT NULL
                CONSTRAINT fk_admission_lists_district_id_areas REFERENCES areas (id),
            version integer NOT NULL,
            title varchar(200) NOT NULL,
            effective_from date NOT NULL,
            note text NOT NULL DEFAULT '',
            created_by bigint CONSTRAINT fk_admission_lists_created_by_users REFERENCES users (id)
                ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_admission_lists_version UNIQUE (district_id, version)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE admission_items (
            id bigserial CONSTRAINT pk_admission_items PRIMARY KEY,
            district_id bigint NOT NULL
                CONSTRAINT fk_admission_items_district_id_areas REFERENCES areas (id),
            list_id bigint NOT NULL
                CONSTRAINT fk_admission_items_list_id_admission_lists REFERENCES admission_lists (id)
                ON DELETE CASCADE,
            code varchar(32) NOT NULL,
            name varchar(200) NOT NULL,
            legal_basis text NOT NULL,
            department_ids bigint[] NOT NULL DEFAULT '{}',
            task_kinds varchar(24)[] NOT NULL DEFAULT '{}',
            CONSTRAINT uq_admission_items_code UNIQUE (list_id, code)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE worker_tasks (
            id bigserial,
            district_id bigint NOT NULL
                CONSTRAINT fk_worker_tasks_district_id_areas REFERENCES areas (id),
            community_id bigint NOT NULL
                CONSTRAINT fk_worker_tasks_community_id_areas REFERENCES areas (id),
            grid_id bigint CONSTRAINT fk_worker_tasks_grid_id_grids REFERENCES grids (id)
                ON DELETE SET NULL,
            worker_id bigint NOT NULL
                CONSTRAINT fk_worker_tasks_worker_id_users REFERENCES users (id),
            kind varchar(24) NOT NULL,
            title varchar(200) NOT NULL,
            description text NOT NULL DEFAULT '',
            case_id bigint,
            meeting_id bigint CONSTRAINT fk_worker_tasks_meeting_id_community_meetings
                REFERENCES community_meetings (id) ON DELETE SET NULL,
            issuer_role varchar(20) NOT NULL,
            department_id bigint
                CONSTRAINT fk_worker_tasks_department_id_departments REFERENCES departments (id),
            matter_code varchar(32),
            admission_item_id bigint
                CONSTRAINT fk_worker_tasks_admission_item_id_admission_items
                REFERENCES admission_items (id) ON DELETE SET NULL,
            outside_list boolean NOT NULL DEFAULT false,
            state varchar(20) NOT NULL,
            due_value numeric(6, 1) NOT NULL,
            due_unit varchar(8) NOT NULL,
            starts_at timestamptz,
            due_at timestamptz,
            provisional boolean NOT NULL DEFAULT false,
            accepted_at timestamptz,
            finished_at timestamptz,
            result text NOT NULL DEFAULT '',
            reason text NOT NULL DEFAULT '',
            decided_by bigint CONSTRAINT fk_worker_tasks_decided_by_users REFERENCES users (id)
                ON DELETE SET NULL,
            decided_at timestamptz,
            decision_reason text NOT NULL DEFAULT '',
            escalation_level integer NOT NULL DEFAULT 0,
            escalated_at timestamptz,
            reminded_at timestamptz,
            created_by bigint CONSTRAINT fk_worker_tasks_created_by_users REFERENCES users (id)
                ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_worker_tasks PRIMARY KEY (id, district_id),
            CONSTRAINT fk_worker_tasks_case_id_cases FOREIGN KEY (case_id, district_id)
                REFERENCES cases (id, district_id) ON DELETE CASCADE ON UPDATE CASCADE,
            CONSTRAINT ck_worker_tasks_kind
                CHECK (kind IN ('verification', 'callback', 'inspection', 'meeting_resolution')),
            CONSTRAINT ck_worker_tasks_state CHECK (state IN ('pending_approval', 'refused',
                'open', 'accepted', 'done', 'declined', 'cancelled')),
            CONSTRAINT ck_worker_tasks_issuer
                CHECK (issuer_role IN ('admin', 'centre', 'street', 'community', 'department',
                                       'system')),
            CONSTRAINT ck_worker_tasks_due_unit CHECK (due_unit IN ('hours', 'days')),
            CONSTRAINT ck_worker_tasks_delivered
                CHECK (state IN ('pending_approval', 'refused') OR due_at IS NOT NULL),
            CONSTRAINT ck_worker_tasks_case CHECK (kind <> 'verification' OR case_id IS NOT NULL)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_worker_tasks_worker ON worker_tasks (district_id, worker_id, state, due_at)"
    )
    op.execute(
        "CREATE INDEX ix_worker_tasks_community ON worker_tasks (district_id, community_id, state)"
    )
    op.execute(
        "CREATE INDEX ix_worker_tasks_running ON worker_tasks (due_at) "
        "WHERE state IN ('open', 'accepted')"
    )
    # One open verification per case (the loop's verify rule reads it).
    op.execute(
        "CREATE UNIQUE INDEX uq_worker_tasks_verification ON worker_tasks (case_id, district_id) "
        "WHERE kind = 'verification' AND state IN ('open', 'accepted')"
    )
    op.execute(
        """
        CREATE TABLE push_subscriptions (
            id bigserial CONSTRAINT pk_push_subscriptions PRIMARY KEY,
            district_id bigint NOT NULL
                CONSTRAINT fk_push_subscriptions_district_id_areas REFERENCES areas (id),
            user_id bigint NOT NULL
                CONSTRAINT fk_push_subscriptions_user_id_users REFERENCES users (id)
                ON DELETE CASCADE,
            channel varchar(20) NOT NULL DEFAULT 'webpush',
            endpoint text NOT NULL,
            p256dh varchar(200) NOT NULL,
            auth varchar(100) NOT NULL,
            expires_at timestamptz,
            user_agent varchar(300) NOT NULL DEFAULT '',
            active boolean NOT NULL DEFAULT true,
            gone_at timestamptz,
            last_status integer,
            last_success_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_push_subscriptions_endpoint UNIQUE (endpoint)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_push_subscriptions_user ON push_subscriptions (district_id, user_id) "
        "WHERE active"
    )
    op.execute(
        """
        CREATE TABLE push_deliveries (
            id bigserial CONSTRAINT pk_push_deliveries PRIMARY KEY,
            district_id bigint NOT NULL
                CONSTRAINT fk_push_deliveries_district_id_areas REFERENCES areas (id),
            subscription_id bigint NOT NULL
                CONSTRAINT fk_push_deliveries_subscription_id_push_subscriptions
                REFERENCES push_subscriptions (id) ON DELETE CASCADE,
            user_id bigint NOT NULL,
            event_id bigint NOT NULL,
            event_type varchar(40) NOT NULL,
            message jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            deferred_until timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            gave_up boolean NOT NULL DEFAULT false,
            last_status integer,
            last_error text,
            CONSTRAINT uq_push_deliveries_event UNIQUE (subscription_id, event_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_push_deliveries_due ON push_deliveries (next_attempt_at) "
        "WHERE delivered_at IS NULL AND NOT gave_up"
    )
    op.execute(
        "CREATE TABLE push_cursor (id integer CONSTRAINT pk_push_cursor PRIMARY KEY, "
        "last_event_id bigint NOT NULL, CONSTRAINT ck_push_cursor_one CHECK (id = 1))"
    )
    op.execute("INSERT INTO push_cursor SELECT 1, coalesce(max(id), 0) FROM events")
    op.execute("ALTER TABLE event_intents ADD COLUMN grid_id bigint")
    op.execute(_PUBLISH.format(grid="NEW.grid_id"))


def downgrade() -> None:
    op.execute(_PUBLISH.format(grid="NULL"))
    op.execute("ALTER TABLE event_intents DROP COLUMN grid_id")
    for t in (
        "push_cursor",
        "push_deliveries",
        "push_subscriptions",
        "worker_tasks",
        "admission_items",
        "admission_lists",
        "duty_slots",
    ):
        op.execute(f"DROP TABLE {t}")

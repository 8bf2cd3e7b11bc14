"""Evaluation facts off the write path (issue 16's loop regression, issue 18's derived data).

Until now statement-level triggers on `cases` and `case_assignments` recomputed the changed
cases' fact rows (`stats_refresh`) inside every intake and loop action: two thirds of the
database time of a loop (`pg_stat_statements`, bench/bench_loop.py). They also cannot run on a
Citus shard. Now:

- `case_changes (district_id, id, case_id)`: the cases whose facts are out of date. The writer
  adds its case in the same statement or transaction as the change (`app.events.outbox.changed`,
  the intake's one statement, the loop's timeline step): one plain insert, keyed by the district
  so that Citus routes it to the case's shard. Append-only on purpose: with a unique key per
  case, a writer's `ON CONFLICT` would wait for a catch-up that had taken the row, while the
  catch-up's fact rows wait for the writer's lock on the case (a deadlock, seen in the loop
  bench). A case changed twice is simply listed twice; the catch-up takes each case once.
- `stats_catch_up(districts)`: takes the districts' pending cases out of the set and refreshes
  their facts (`stats_refresh`, unchanged; the monthly rollups follow the facts by their own
  triggers), in one statement. Catch-ups are serialised by an advisory lock, so two never
  refresh the same case at once, and a catch-up that starts after a change has committed sees
  it: figures read after `stats_catch_up` are exact. The figures' readers call it for their
  districts first; a background loop (`WANGGE_DERIVE_SECONDS`) keeps the set short.
- The six refresh triggers are dropped. Facts are current at this migration (nothing pending).
- `ix_case_events_case_id_id (case_id, id)` replaces `ix_case_events_case_id`: the timeline's hash
  chain (0018) looks up a case's last step on every insert; with only `(case_id)`, the generic
  plan of that lookup walked the primary key backwards from the newest step, so each insert got
  slower as the table grew (20,440 steps of the synthetic year: 34 s of lookups, against
  0.6 s of hashing; `pg_stat_statements`, tests/api/test_stats_history.py).

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATCH_UP_LOCK = 7_246_004

TRIGGERS = [
    (table, event)
    for table in ("cases", "case_assignments")
    for event in ("insert", "update", "delete")
]


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE case_changes (
            id bigserial NOT NULL,
            district_id bigint NOT NULL,
            case_id bigint NOT NULL,
            CONSTRAINT pk_case_changes PRIMARY KEY (district_id, id)
        )
        """
    )
    for table, event in TRIGGERS:
        fn = f"stats_{table}_{event}"
        op.execute(f"DROP TRIGGER IF EXISTS {fn} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    op.execute("CREATE INDEX ix_case_events_case_id_id ON case_events (case_id, id)")
    op.execute("DROP INDEX ix_case_events_case_id")
    op.execute(
        f"""
        CREATE FUNCTION stats_catch_up(districts bigint[]) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE ids bigint[];
        BEGIN
          PERFORM pg_advisory_xact_lock({CATCH_UP_LOCK});
          WITH taken AS (
            DELETE FROM case_changes p
            WHERE districts IS NULL OR p.district_id = ANY(districts)
            RETURNING p.case_id
          )
          SELECT array_agg(DISTINCT case_id) INTO ids FROM taken;
          IF ids IS NULL THEN
            RETURN 0;
          END IF;
          PERFORM stats_refresh(ids);
          RETURN cardinality(ids);
        END $$
        """
    )


def downgrade() -> None:
    op.execute("CREATE INDEX ix_case_events_case_id ON case_events (case_id)")
    op.execute("DROP INDEX ix_case_events_case_id_id")
    op.execute("SELECT stats_catch_up(NULL)")
    op.execute("DROP FUNCTION stats_catch_up(bigint[])")
    op.execute("DROP TABLE case_changes")
    for table, event in TRIGGERS:
        fn = f"stats_{table}_{event}"
        key = "id" if table == "cases" else "case_id"
        rows = "old_rows" if event == "delete" else "new_rows"
        ref = "OLD TABLE AS old_rows" if event == "delete" else "NEW TABLE AS new_rows"
        op.execute(
            f"""
            CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM stats_refresh(array(SELECT DISTINCT {key} FROM {rows}));
              RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {fn} AFTER {event.upper()} ON {table} REFERENCING {ref} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
        )

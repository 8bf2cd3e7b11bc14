"""The outbox's intents keep a logged id sequence, so a promoted standby can use it (issue 22).

`event_intents` is UNLOGGED (migration 0012: its rows never outlive their transaction). Since
PostgreSQL 15 the sequence of an unlogged table's serial column is unlogged too, and a standby
promoted by Patroni then fails every intake with "bad magic number in sequence
event_intents_id_seq" (found by tests/ops/test_failover.py): the table stays unlogged, its
sequence is logged (a few WAL bytes per 32 ids).

`ops_ready()`: what /readyz asks the database, in PL/pgSQL (so a readiness check proves the
language the triggers need runs, not only that `SELECT 1` does): the migration revision, the
PostGIS version, whether this server is a standby, and that the outbox's sequence can be read.

Revision ID: 0019
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER SEQUENCE event_intents_id_seq SET LOGGED")
    op.execute(
        """
        CREATE FUNCTION ops_ready() RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
        DECLARE
            rev text;
            gis text;
            seq bigint;
        BEGIN
            SELECT string_agg(version_num, ',' ORDER BY version_num) INTO rev FROM alembic_version;
            SELECT extversion INTO gis FROM pg_extension WHERE extname = 'postgis';
            SELECT last_value INTO seq FROM event_intents_id_seq;
            RETURN jsonb_build_object(
                'revision', rev, 'postgis', gis, 'standby', pg_is_in_recovery(),
                'outbox_sequence', seq IS NOT NULL);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION ops_ready()")
    op.execute("ALTER SEQUENCE event_intents_id_seq SET UNLOGGED")

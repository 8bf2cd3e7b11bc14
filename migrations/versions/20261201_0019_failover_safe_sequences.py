"""The outbox's intents keep a logged id sequence, so a promoted standby can use it (issue 22).

`event_intents` is UNLOGGED (migration 0012: its rows never outlive their transaction). Since
PostgreSQL 15 the sequence of an unlogged table's serial column is unlogged too, and a standby
promoted by Patroni then fails every intake with "bad magic number in sequence
event_intents_id_seq" (found by tests/ops/test_failover.py): the table stays unlogged, its
sequence is logged (a few WAL bytes per 32 ids).

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


def downgrade() -> None:
    op.execute("ALTER SEQUENCE event_intents_id_seq SET UNLOGGED")

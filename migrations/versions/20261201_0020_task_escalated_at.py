"""Community tasks remember when the street was told (the same rule as the loop's 0018, bug 3).

- `community_tasks.escalated_at`: when the clock told the street (level 1). The centre is told
  `escalate_to_centre_hours` after that, not after the deadline. Existing escalated tasks take the
  time of their last `escalated` step (else their deadline, the old reading).

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE community_tasks ADD COLUMN escalated_at timestamptz")
    op.execute(
        """
        UPDATE community_tasks t SET escalated_at = coalesce(
            (SELECT max(s.at) FROM community_steps s
             WHERE s.object_type = 'task' AND s.object_id = t.id AND s.action = 'escalated'),
            t.due_at)
        WHERE t.escalation_level >= 1
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE community_tasks DROP COLUMN escalated_at")

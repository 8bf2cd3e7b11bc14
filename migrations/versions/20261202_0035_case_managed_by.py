"""A case carried by a kind above the loop (issue 21: a dispute's case) says so,
`cases.managed_by`: the loop refuses the generic actions that would bypass that kind's lifecycle
(`app.loop.managed`). The cases of the disputes already stored are marked.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("managed_by", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE cases c SET managed_by = 'dispute' FROM disputes d "
        "WHERE d.case_id = c.id AND d.district_id = c.district_id"
    )


def downgrade() -> None:
    op.drop_column("cases", "managed_by")

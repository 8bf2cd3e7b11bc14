"""A dispute screening report sent from the field app's outbox carries the phone's id
(`disputes.client_id`, like visits and check-ins): a resent report answers the dispute stored the
first time. Unique per (district, reporter, client id).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("disputes", sa.Column("client_id", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_disputes_client",
        "disputes",
        ["district_id", "reported_by", "client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_disputes_client", table_name="disputes")
    op.drop_column("disputes", "client_id")

"""Disputes on the case engine (issue 21): every dispute is backed by a case of the 矛盾纠纷
class (its number, place, timeline with the hash chain, the loop's dispatch to departments and
the clock), `disputes.case_id`; a screening report raised on a patrol names it,
`disputes.patrol_id`.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("disputes", sa.Column("case_id", sa.BigInteger(), nullable=True))
    op.add_column("disputes", sa.Column("patrol_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_disputes_case_id_cases"),
        "disputes",
        "cases",
        ["case_id", "district_id"],
        ["id", "district_id"],
        ondelete="CASCADE",
    )
    op.create_index("ix_disputes_case", "disputes", ["district_id", "case_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_disputes_case", table_name="disputes")
    op.drop_constraint(op.f("fk_disputes_case_id_cases"), "disputes", type_="foreignkey")
    op.drop_column("disputes", "patrol_id")
    op.drop_column("disputes", "case_id")

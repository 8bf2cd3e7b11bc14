"""Open311: API keys and intake channels (issue 9).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # cases.channel exists since 0003; issue 7 may add it too: never clash.
    op.execute("ALTER TABLE cases ADD COLUMN IF NOT EXISTS channel text NOT NULL DEFAULT 'app'")
    op.create_table(
        "open311_keys",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("integrator", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column(
            "area_ids", sa.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("builtin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "channel IN ('hotline', 'qr', 'department')", name=op.f("ck_open311_keys_channel")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_open311_keys_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_open311_keys_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["users.id"], name=op.f("fk_open311_keys_revoked_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
        sa.UniqueConstraint("user_id", name=op.f("uq_open311_keys_user_id")),
    )
    op.create_index(
        "uq_open311_keys_builtin",
        "open311_keys",
        ["builtin"],
        unique=True,
        postgresql_where=sa.text("builtin"),
    )
    op.create_table(
        "open311_requests",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.Uuid(), nullable=False),
        sa.Column("media_url", sa.String(length=1000), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_open311_requests_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_open311_requests_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["open311_keys.id"], name=op.f("fk_open311_requests_key_id_open311_keys")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_open311_requests")),
        sa.UniqueConstraint("token", name=op.f("uq_open311_requests_token")),
    )
    op.create_index(
        op.f("ix_open311_requests_district_id"), "open311_requests", ["district_id"], unique=False
    )
    op.create_index(
        op.f("ix_open311_requests_key_id"), "open311_requests", ["key_id"], unique=False
    )

    # The update feed reads the timeline by time.
    op.create_index("ix_case_events_at", "case_events", ["at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_events_at", table_name="case_events")
    op.drop_index(op.f("ix_open311_requests_key_id"), table_name="open311_requests")
    op.drop_index(op.f("ix_open311_requests_district_id"), table_name="open311_requests")
    op.drop_table("open311_requests")
    op.drop_index("uq_open311_keys_builtin", table_name="open311_keys")
    op.drop_table("open311_keys")

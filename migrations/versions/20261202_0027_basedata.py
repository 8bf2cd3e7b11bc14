"""Base data (issue 21): houses of buildings, households, residents (identity numbers and phones
only encrypted: AES-256-GCM with a key version per row, a keyed HMAC-SHA256 for exact search, a
masked copy for lists), their household history, organisations, the per-district tag catalogue,
the change history, deletion tombstones, the persons a case names; disputes (矛盾纠纷) with parties, mediation sessions and follow-ups; the derived households and
population of grids and buildings; the household or person a visit names.

Every table but `resident_tags` carries `district_id` in its key (distributed on it on Citus);
`resident_tags` is a small per-district catalogue (a reference table).

Revision ID: 0027
Revises: 0024
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "basedata_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "fields", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_basedata_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_basedata_changes_district_id_areas")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_basedata_changes")),
    )
    op.create_index(
        "ix_basedata_changes_object",
        "basedata_changes",
        ["district_id", "object_type", "object_id"],
        unique=False,
    )
    op.create_table(
        "basedata_tombstones",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_basedata_tombstones_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_basedata_tombstones_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_basedata_tombstones")),
    )
    op.create_table(
        "resident_tags",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("sensitive", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("visit_every_days", sa.SmallInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "visit_every_days IS NULL OR visit_every_days > 0", name=op.f("ck_resident_tags_every")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_resident_tags_district_id_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_tags")),
        sa.UniqueConstraint("district_id", "code", name=op.f("uq_resident_tags_district_id")),
    )
    op.create_table(
        "houses",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("building_id", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=20), server_default="", nullable=False),
        sa.Column("floor", sa.SmallInteger(), nullable=False),
        sa.Column("room", sa.String(length=20), nullable=False),
        sa.Column("use", sa.String(length=16), server_default="residential", nullable=False),
        sa.Column("tenure", sa.String(length=16), server_default="owned", nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "tenure IN ('owned', 'rented', 'public', 'other')", name=op.f("ck_houses_tenure")
        ),
        sa.CheckConstraint(
            "use IN ('residential', 'shop', 'office', 'vacant')", name=op.f("ck_houses_use")
        ),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
            name=op.f("fk_houses_building_id_buildings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_houses_district_id_areas")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_houses")),
        sa.UniqueConstraint(
            "district_id",
            "building_id",
            "unit",
            "floor",
            "room",
            name=op.f("uq_houses_district_id"),
        ),
    )
    op.create_index("ix_houses_building", "houses", ["district_id", "building_id"], unique=False)
    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("house_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_households_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["house_id", "district_id"],
            ["houses.id", "houses.district_id"],
            name=op.f("fk_households_house_id_houses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_households")),
    )
    op.create_index("ix_households_house", "households", ["district_id", "house_id"], unique=False)
    op.create_table(
        "organisations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("building_id", sa.BigInteger(), nullable=False),
        sa.Column("house_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("contact_name", sa.String(length=50), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(length=24), nullable=True),
        sa.Column("key_version", sa.SmallInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('shop', 'company', 'school', 'social', 'government', 'other')",
            name=op.f("ck_organisations_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
            name=op.f("fk_organisations_building_id_buildings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_organisations_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["house_id", "district_id"],
            ["houses.id", "houses.district_id"],
            name=op.f("fk_organisations_house_id_houses"),
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_organisations")),
    )
    op.create_index(
        "ix_organisations_building", "organisations", ["district_id", "building_id"], unique=False
    )
    op.create_table(
        "residents",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=50), nullable=True),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.Column("id_enc", sa.LargeBinary(), nullable=True),
        sa.Column("id_hash", sa.LargeBinary(), nullable=True),
        sa.Column("id_masked", sa.String(length=24), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(length=24), nullable=True),
        sa.Column("key_version", sa.SmallInteger(), nullable=True),
        sa.Column("relation", sa.String(length=16), server_default="other", nullable=False),
        sa.Column("registered", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("living", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "tags", postgresql.ARRAY(sa.String(length=32)), server_default="{}", nullable=False
        ),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reduced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "gender IS NULL OR gender IN ('M', 'F')", name=op.f("ck_residents_gender")
        ),
        sa.CheckConstraint(
            "relation IN ('head', 'spouse', 'child', 'parent', 'grandchild', 'sibling', 'tenant', 'other')",
            name=op.f("ck_residents_relation"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'moved_away', 'deceased')", name=op.f("ck_residents_status")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_residents_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["household_id", "district_id"],
            ["households.id", "households.district_id"],
            name=op.f("fk_residents_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_residents")),
    )
    op.create_index(
        "ix_residents_household", "residents", ["district_id", "household_id"], unique=False
    )
    op.create_index(
        "ix_residents_moved", "residents", ["district_id", "status", "moved_at"], unique=False
    )
    op.create_index(
        "ix_residents_phone_hash", "residents", ["district_id", "phone_hash"], unique=False
    )
    op.create_index(
        "uq_residents_id_hash",
        "residents",
        ["district_id", "id_hash"],
        unique=True,
        postgresql_where=sa.text("id_hash IS NOT NULL"),
    )
    op.create_table(
        "case_persons",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "resident_id IS NOT NULL OR household_id IS NOT NULL",
            name=op.f("ck_case_persons_names"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id", "district_id"],
            ["cases.id", "cases.district_id"],
            name=op.f("fk_case_persons_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_case_persons_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_case_persons_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["household_id", "district_id"],
            ["households.id", "households.district_id"],
            name=op.f("fk_case_persons_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id", "district_id"],
            ["residents.id", "residents.district_id"],
            name=op.f("fk_case_persons_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_case_persons")),
    )
    op.create_index(
        "ix_case_persons_case", "case_persons", ["district_id", "case_id"], unique=False
    )
    op.create_index(
        "ix_case_persons_household", "case_persons", ["district_id", "household_id"], unique=False
    )
    op.create_index(
        "ix_case_persons_resident", "case_persons", ["district_id", "resident_id"], unique=False
    )
    op.create_table(
        "household_members",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column(
            "from_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("to_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_household_members_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["household_id", "district_id"],
            ["households.id", "households.district_id"],
            name=op.f("fk_household_members_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id", "district_id"],
            ["residents.id", "residents.district_id"],
            name=op.f("fk_household_members_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_household_members")),
    )
    op.create_index(
        "ix_household_members_household",
        "household_members",
        ["district_id", "household_id"],
        unique=False,
    )
    op.create_index(
        "ix_household_members_resident",
        "household_members",
        ["district_id", "resident_id"],
        unique=False,
    )
    op.add_column("buildings", sa.Column("derived_households", sa.Integer(), nullable=True))
    op.add_column("grids", sa.Column("derived_households", sa.Integer(), nullable=True))
    op.add_column("grids", sa.Column("derived_population", sa.Integer(), nullable=True))
    op.add_column("visits", sa.Column("household_id", sa.BigInteger(), nullable=True))
    op.add_column("visits", sa.Column("resident_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_visits_household_at", "visits", ["district_id", "household_id", "at"], unique=False
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.BigInteger(), server_default=sa.FetchedValue(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("risk", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="screened", nullable=False),
        sa.Column("source", sa.String(length=16), server_default="report", nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("reported_by", sa.BigInteger(), nullable=False),
        sa.Column(
            "reported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_to", sa.String(length=16), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meeting_id", sa.BigInteger(), nullable=True),
        sa.Column("agreement", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('family', 'neighbour', 'property', 'labour', 'land', 'contract', 'other')",
            name=op.f("ck_disputes_kind"),
        ),
        sa.CheckConstraint("risk IN ('low', 'medium', 'high')", name=op.f("ck_disputes_risk")),
        sa.CheckConstraint(
            "source IN ('patrol', 'visit', 'report', 'hotline')", name=op.f("ck_disputes_source")
        ),
        sa.CheckConstraint(
            "status IN ('screened', 'mediating', 'referred', 'follow_up', 'closed', 'failed')",
            name=op.f("ck_disputes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_disputes_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_disputes_district_id_areas")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_disputes_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["community_meetings.id"],
            name=op.f("fk_disputes_meeting_id_community_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["reported_by"], ["users.id"], name=op.f("fk_disputes_reported_by_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_disputes")),
    )
    op.create_index(
        "ix_disputes_grid", "disputes", ["district_id", "grid_id", "reported_at"], unique=False
    )
    op.create_index("ix_disputes_status", "disputes", ["district_id", "status"], unique=False)
    op.create_table(
        "dispute_followups",
        sa.Column("id", sa.BigInteger(), server_default=sa.FetchedValue(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holds", sa.Boolean(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dispute_id", "district_id"],
            ["disputes.id", "disputes.district_id"],
            name=op.f("fk_dispute_followups_dispute_id_disputes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_dispute_followups_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_dispute_followups_worker_id_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_dispute_followups")),
    )
    op.create_table(
        "dispute_parties",
        sa.Column("id", sa.BigInteger(), server_default=sa.FetchedValue(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=True),
        sa.Column("organisation_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id", "district_id"],
            ["disputes.id", "disputes.district_id"],
            name=op.f("fk_dispute_parties_dispute_id_disputes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_dispute_parties_district_id_areas")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_dispute_parties")),
    )
    op.create_index(
        "ix_dispute_parties_dispute", "dispute_parties", ["district_id", "dispute_id"], unique=False
    )
    op.create_index(
        "ix_dispute_parties_resident",
        "dispute_parties",
        ["district_id", "resident_id"],
        unique=False,
    )
    op.create_table(
        "dispute_sessions",
        sa.Column("id", sa.BigInteger(), server_default=sa.FetchedValue(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("mediator_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("agreement", sa.Text(), nullable=True),
        sa.Column("signed_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('agreed', 'continued', 'failed')", name=op.f("ck_dispute_sessions_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id", "district_id"],
            ["disputes.id", "disputes.district_id"],
            name=op.f("fk_dispute_sessions_dispute_id_disputes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_dispute_sessions_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["mediator_id"], ["users.id"], name=op.f("fk_dispute_sessions_mediator_id_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_dispute_sessions")),
    )
    # Composite keys (id, district_id): the ids come from a sequence of their own (as 0022).
    for table in (
        "houses",
        "households",
        "residents",
        "household_members",
        "organisations",
        "basedata_changes",
        "basedata_tombstones",
        "case_persons",
        "disputes",
        "dispute_parties",
        "dispute_sessions",
        "dispute_followups",
    ):
        op.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")


def downgrade() -> None:
    op.drop_table("dispute_sessions")
    op.drop_index("ix_dispute_parties_resident", table_name="dispute_parties")
    op.drop_index("ix_dispute_parties_dispute", table_name="dispute_parties")
    op.drop_table("dispute_parties")
    op.drop_table("dispute_followups")
    op.drop_index("ix_disputes_status", table_name="disputes")
    op.drop_index("ix_disputes_grid", table_name="disputes")
    op.drop_table("disputes")
    op.drop_index("ix_visits_household_at", table_name="visits")
    op.drop_column("visits", "resident_id")
    op.drop_column("visits", "household_id")
    op.drop_column("grids", "derived_population")
    op.drop_column("grids", "derived_households")
    op.drop_column("buildings", "derived_households")
    op.drop_index("ix_household_members_resident", table_name="household_members")
    op.drop_index("ix_household_members_household", table_name="household_members")
    op.drop_table("household_members")
    op.drop_index("ix_case_persons_resident", table_name="case_persons")
    op.drop_index("ix_case_persons_household", table_name="case_persons")
    op.drop_index("ix_case_persons_case", table_name="case_persons")
    op.drop_table("case_persons")
    op.drop_index(
        "uq_residents_id_hash",
        table_name="residents",
        postgresql_where=sa.text("id_hash IS NOT NULL"),
    )
    op.drop_index("ix_residents_phone_hash", table_name="residents")
    op.drop_index("ix_residents_moved", table_name="residents")
    op.drop_index("ix_residents_household", table_name="residents")
    op.drop_table("residents")
    op.drop_index("ix_organisations_building", table_name="organisations")
    op.drop_table("organisations")
    op.drop_index("ix_households_house", table_name="households")
    op.drop_table("households")
    op.drop_index("ix_houses_building", table_name="houses")
    op.drop_table("houses")
    op.drop_table("resident_tags")
    op.drop_table("basedata_tombstones")
    op.drop_index("ix_basedata_changes_object", table_name="basedata_changes")
    op.drop_table("basedata_changes")

"""Field work (issue 19): patrols (巡查) and their track points, the coverage lattice and its hits,
check-in points (打卡点) and check-ins, the visit purposes catalogue and visits (走访).

Every table carries `district_id` (the distribution key of the case side); the rows of one patrol
refer to it by `(patrol_id, district_id)`. A retried batch of points adds nothing: the primary key
`(district_id, patrol_id, at)` and the unique `(district_id, patrol_id, client_id)`.

Revision ID: 0022
Revises: 0025
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_purposes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("sort", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_visit_purposes")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "location",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("schedule", sa.String(length=16), nullable=False),
        sa.Column("per_week", sa.SmallInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "schedule <> 'weekly' OR (per_week BETWEEN 1 AND 7)",
            name=op.f("ck_checkpoints_per_week"),
        ),
        sa.CheckConstraint(
            "schedule IN ('working_day', 'weekly')", name=op.f("ck_checkpoints_schedule")
        ),
        sa.CheckConstraint("radius_m > 0", name=op.f("ck_checkpoints_radius")),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_checkpoints_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_checkpoints_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_checkpoints_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_checkpoints_grid_id_grids")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_checkpoints")),
    )
    op.create_index(
        "ix_checkpoints_community", "checkpoints", ["district_id", "community_id"], unique=False
    )
    op.create_index(
        "ix_checkpoints_location",
        "checkpoints",
        ["location"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_table(
        "patrol_cells",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("size_m", sa.SmallInteger(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "center",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_patrol_cells_district_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
            name=op.f("fk_patrol_cells_grid_id_grids"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_patrol_cells")),
    )
    op.create_index(
        "ix_patrol_cells_geom", "patrol_cells", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_index(
        "ix_patrol_cells_grid", "patrol_cells", ["grid_id", "district_id"], unique=False
    )
    op.create_table(
        "patrols",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("street_id", sa.BigInteger(), nullable=True),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "pauses", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("paused_s", sa.Float(), server_default="0", nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("points", sa.Integer(), server_default="0", nullable=False),
        sa.Column("kept", sa.Integer(), server_default="0", nullable=False),
        sa.Column("distance_m", sa.Float(), server_default="0", nullable=False),
        sa.Column(
            "track",
            geoalchemy2.types.Geometry(
                geometry_type="MULTILINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "track_display",
            geoalchemy2.types.Geometry(
                geometry_type="MULTILINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("derived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dirty", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'ended')", name=op.f("ck_patrols_status")
        ),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_patrols_ends_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_patrols_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_patrols_district_id_areas")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_patrols_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["street_id"], ["areas.id"], name=op.f("fk_patrols_street_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_patrols_worker_id_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_patrols")),
    )
    op.create_index(
        "ix_patrols_grid_started", "patrols", ["district_id", "grid_id", "started_at"], unique=False
    )
    op.create_index("ix_patrols_track", "patrols", ["track"], unique=False, postgresql_using="gist")
    op.create_index(
        "ix_patrols_worker_started",
        "patrols",
        ["district_id", "worker_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "uq_patrols_worker_client",
        "patrols",
        ["district_id", "worker_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.create_table(
        "checkins",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "location",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("input_crs", sa.String(length=10), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["checkpoint_id", "district_id"],
            ["checkpoints.id", "checkpoints.district_id"],
            name=op.f("fk_checkins_checkpoint_id_checkpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_checkins_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_checkins_district_id_areas")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_checkins_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_checkins_worker_id_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_checkins")),
    )
    op.create_index(
        "ix_checkins_checkpoint_at",
        "checkins",
        ["district_id", "checkpoint_id", "at"],
        unique=False,
    )
    op.create_index(
        "ix_checkins_worker_at", "checkins", ["district_id", "worker_id", "at"], unique=False
    )
    op.create_index(
        "uq_checkins_worker_client",
        "checkins",
        ["district_id", "worker_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.create_table(
        "patrol_cell_hits",
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id", "district_id"],
            ["patrol_cells.id", "patrol_cells.district_id"],
            name=op.f("fk_patrol_cell_hits_cell_id_patrol_cells"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patrol_id", "district_id"],
            ["patrols.id", "patrols.district_id"],
            name=op.f("fk_patrol_cell_hits_patrol_id_patrols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "district_id", "cell_id", "patrol_id", name=op.f("pk_patrol_cell_hits")
        ),
    )
    op.create_index(
        "ix_patrol_cell_hits_grid_at",
        "patrol_cell_hits",
        ["district_id", "grid_id", "at"],
        unique=False,
    )
    op.create_table(
        "patrol_points",
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("accuracy_m", sa.Float(), nullable=False),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("input_crs", sa.String(length=10), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "flag IS NULL OR flag IN ('accuracy', 'speed', 'paused')",
            name=op.f("ck_patrol_points_flag"),
        ),
        sa.ForeignKeyConstraint(
            ["patrol_id", "district_id"],
            ["patrols.id", "patrols.district_id"],
            name=op.f("fk_patrol_points_patrol_id_patrols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("district_id", "patrol_id", "at", name=op.f("pk_patrol_points")),
    )
    op.create_index(
        "uq_patrol_points_client",
        "patrol_points",
        ["district_id", "patrol_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.BigInteger(), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("building_id", sa.BigInteger(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("patrol_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("purpose_code", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "outcome IN ('done', 'not_home', 'follow_up', 'case_raised')",
            name=op.f("ck_visits_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["building_id"], ["buildings.id"], name=op.f("fk_visits_building_id_buildings")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_visits_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["areas.id"], name=op.f("fk_visits_district_id_areas")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_visits_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["purpose_code"],
            ["visit_purposes.code"],
            name=op.f("fk_visits_purpose_code_visit_purposes"),
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_visits_worker_id_users")
        ),
        sa.PrimaryKeyConstraint("id", "district_id", name=op.f("pk_visits")),
    )
    op.create_index(
        "ix_visits_building_at", "visits", ["district_id", "building_id", "at"], unique=False
    )
    op.create_index(
        "ix_visits_worker_at", "visits", ["district_id", "worker_id", "at"], unique=False
    )
    op.create_index(
        "uq_visits_worker_client",
        "visits",
        ["district_id", "worker_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    # Composite keys (id, district_id): the ids come from a sequence of their own, as the case
    # side's (a column of a composite primary key is not made serial).
    for table in ("patrols", "patrol_cells", "checkpoints", "checkins", "visits"):
        op.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
    op.execute(
        """
        INSERT INTO visit_purposes (code, name, name_en, sort) VALUES
        ('condolence', '走访慰问', 'Caring visit', 10),
        ('safety', '安全检查', 'Safety inspection', 20),
        ('policy', '政策宣传', 'Policy outreach', 30),
        ('dispute', '矛盾排查', 'Dispute screening', 40),
        ('care', '重点人群关爱', 'Care for people who need attention', 50),
        ('info', '信息采集', 'Base data collection', 60),
        ('fire', '消防检查', 'Fire safety check', 70),
        ('shop', '商户走访', 'Visit to a shop', 80)
        """
    )


def downgrade() -> None:
    op.drop_index(
        "uq_visits_worker_client",
        table_name="visits",
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.drop_index("ix_visits_worker_at", table_name="visits")
    op.drop_index("ix_visits_building_at", table_name="visits")
    op.drop_table("visits")
    op.drop_index(
        "uq_patrol_points_client",
        table_name="patrol_points",
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.drop_table("patrol_points")
    op.drop_index("ix_patrol_cell_hits_grid_at", table_name="patrol_cell_hits")
    op.drop_table("patrol_cell_hits")
    op.drop_index(
        "uq_checkins_worker_client",
        table_name="checkins",
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.drop_index("ix_checkins_worker_at", table_name="checkins")
    op.drop_index("ix_checkins_checkpoint_at", table_name="checkins")
    op.drop_table("checkins")
    op.drop_index(
        "uq_patrols_worker_client",
        table_name="patrols",
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.drop_index("ix_patrols_worker_started", table_name="patrols")
    op.drop_index("ix_patrols_track", table_name="patrols", postgresql_using="gist")
    op.drop_index("ix_patrols_grid_started", table_name="patrols")
    op.drop_table("patrols")
    op.drop_index("ix_patrol_cells_grid", table_name="patrol_cells")
    op.drop_index("ix_patrol_cells_geom", table_name="patrol_cells", postgresql_using="gist")
    op.drop_table("patrol_cells")
    op.drop_index("ix_checkpoints_location", table_name="checkpoints", postgresql_using="gist")
    op.drop_index("ix_checkpoints_community", table_name="checkpoints")
    op.drop_table("checkpoints")
    op.drop_table("visit_purposes")

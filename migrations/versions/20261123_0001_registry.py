"""The grid registry: areas, grids with boundary history, buildings.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "areas",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("areas.id", ondelete="RESTRICT")),
        sa.Column(
            "boundary",
            Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=True,
        ),
        sa.Column("address", sa.Text),
        sa.Column("phone", sa.String(40)),
        sa.Column("service_hours", sa.Text),
        *_timestamps(),
        sa.CheckConstraint("level IN ('city', 'district', 'street', 'community')", name="level"),
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name="code_format"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_areas_parent_id", "areas", ["parent_id"])
    op.create_index("ix_areas_level", "areas", ["level"])
    op.create_index("ix_areas_boundary", "areas", ["boundary"], postgresql_using="gist")
    op.execute("CREATE INDEX ix_areas_name_trgm ON areas USING gin (name gin_trgm_ops)")

    op.create_table(
        "grids",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "community_id",
            sa.BigInteger,
            sa.ForeignKey("areas.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("households", sa.Integer),
        sa.Column("population", sa.Integer),
        sa.Column("notes", sa.Text),
        *_timestamps(),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('city', 'rural', 'special')", name="kind"),
        sa.CheckConstraint("households IS NULL OR households >= 0", name="households"),
        sa.CheckConstraint("population IS NULL OR population >= 0", name="population"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_grids_community_id", "grids", ["community_id"])
    op.execute("CREATE INDEX ix_grids_name_trgm ON grids USING gin (name gin_trgm_ops)")

    op.create_table(
        "grid_boundaries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "grid_id",
            sa.BigInteger,
            sa.ForeignKey("grids.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "boundary",
            Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period"),
    )
    op.create_index("ix_grid_boundaries_grid_id", "grid_boundaries", ["grid_id"])
    # The current map: one partial spatial index that every live lookup uses.
    op.execute(
        "CREATE INDEX ix_grid_boundaries_current ON grid_boundaries USING gist (boundary) "
        "WHERE valid_to IS NULL"
    )
    op.execute("CREATE INDEX ix_grid_boundaries_all ON grid_boundaries USING gist (boundary)")
    # At most one version of a grid's boundary is valid at any instant.
    op.execute(
        "ALTER TABLE grid_boundaries ADD CONSTRAINT ex_grid_boundaries_period "
        "EXCLUDE USING gist (grid_id WITH =, tstzrange(valid_from, valid_to) WITH &&)"
    )

    op.create_table(
        "buildings",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "grid_id",
            sa.BigInteger,
            sa.ForeignKey("grids.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("address", sa.String(200)),
        sa.Column("households", sa.Integer, nullable=False, server_default="0"),
        sa.Column("units", sa.Integer, nullable=False, server_default="0"),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("households >= 0", name="households"),
        sa.CheckConstraint("units >= 0", name="units"),
    )
    op.create_index("ix_buildings_grid_id", "buildings", ["grid_id"])
    op.create_index("ix_buildings_geom", "buildings", ["geom"], postgresql_using="gist")

    # Live grids with their current boundary: what maps, exports and tiles read.
    op.execute(
        """
        CREATE VIEW current_grids AS
        SELECT g.id, g.code, g.name, g.community_id, g.kind, g.households, g.population,
               g.notes, g.created_at, g.updated_at, b.boundary, b.valid_from
        FROM grids g
        JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
        WHERE g.deleted_at IS NULL
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS current_grids")
    op.drop_table("buildings")
    op.drop_table("grid_boundaries")
    op.drop_table("grids")
    op.drop_table("areas")

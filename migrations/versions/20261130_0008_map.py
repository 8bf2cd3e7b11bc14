"""Map: tiles and OGC API support (issue 8).

No schema change: every tile and OGC query is served by the existing GiST indexes
(ix_grid_boundaries_current, ix_areas_boundary, ix_cases_location, ix_buildings_geom) and
ix_cases_grid_status for the hot-spot counts (EXPLAIN-checked; see app/tiles/service.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

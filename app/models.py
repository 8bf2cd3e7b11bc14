"""Every table's model, imported in one place (for Alembic and for tests)."""

from app.areas.models import Area
from app.buildings.models import Building
from app.db import Base
from app.grids.models import Grid, GridBoundary

__all__ = ["Area", "Base", "Building", "Grid", "GridBoundary"]

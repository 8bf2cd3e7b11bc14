"""Vector tiles of the registry and of cases (Mapbox Vector Tiles, TileJSON 3.0)."""

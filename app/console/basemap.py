"""The console's base map: a configured tile URL (天地图 WMTS, any XYZ raster service) or an
offline MBTiles file served by the app (`WANGGE_CONSOLE_BASE_MAP_*`)."""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.config import get_settings

_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


def origin() -> str | None:
    """The external base map's origin, for the pages' Content-Security-Policy."""
    url = get_settings().console_base_map_url
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@lru_cache(maxsize=2)
def _metadata(path: str) -> dict[str, str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT name, value FROM metadata").fetchall())


def config(base: str) -> dict[str, Any] | None:
    """What the console needs to draw the base map (MapLibre raster source), or None."""
    s = get_settings()
    if s.console_base_map_url:
        return {
            "tiles": [s.console_base_map_url],
            "tile_size": 256,
            "max_zoom": 18,
            "attribution": s.console_base_map_attribution,
        }
    if s.console_base_map_file and Path(s.console_base_map_file).is_file():
        meta = _metadata(s.console_base_map_file)
        out: dict[str, Any] = {
            "tiles": [f"{base}/console/basemap/{{z}}/{{x}}/{{y}}"],
            "tile_size": 256,
            "min_zoom": int(meta.get("minzoom", 0)),
            "max_zoom": int(meta.get("maxzoom", 18)),
            "attribution": s.console_base_map_attribution or meta.get("attribution", ""),
        }
        if "bounds" in meta:
            out["bounds"] = [float(v) for v in meta["bounds"].split(",")]
        return out
    return None


def tile(z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """A tile of the offline file (MBTiles rows are TMS: y counted from the south), or None."""
    path = get_settings().console_base_map_file
    if not path or not Path(path).is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y),
        ).fetchone()
    if row is None:
        return None
    data = bytes(row[0])
    kind = next((t for magic, t in _TYPES.items() if data.startswith(magic)), "image/png")
    return data, kind

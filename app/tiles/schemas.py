"""TileJSON 3.0.0 (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0)."""

from __future__ import annotations

from typing import Any

from app.schemas import ResponseModel


class VectorLayer(ResponseModel):
    id: str
    description: str
    minzoom: int
    maxzoom: int
    fields: dict[str, str]


class TileJSON(ResponseModel):
    tilejson: str
    name: str
    description: str
    version: str
    scheme: str
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float]
    center: list[float]
    vector_layers: list[VectorLayer | dict[str, Any]]

"""Documents of OGC API – Features (for the OpenAPI description; routes build them as dicts)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.schemas import ResponseModel


class Link(ResponseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(ResponseModel):
    title: str
    description: str
    links: list[Link]


class Conformance(ResponseModel):
    conformsTo: list[str]


class CollectionOut(ResponseModel):
    id: str
    title: str
    description: str
    itemType: str
    extent: dict[str, Any]
    crs: list[str]
    storageCrs: str
    links: list[Link]


class Collections(ResponseModel):
    links: list[Link]
    collections: list[CollectionOut]
    crs: list[str]


class Feature(ResponseModel):
    type: str = "Feature"
    id: int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]
    links: list[Link] = Field(default_factory=list)


class FeatureCollection(ResponseModel):
    type: str = "FeatureCollection"
    features: list[Feature]
    links: list[Link]
    numberMatched: int
    numberReturned: int
    timeStamp: str

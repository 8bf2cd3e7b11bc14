"""/ogc — OGC API – Features: Part 1 (Core, GeoJSON, OpenAPI 3.0) and Part 2 (CRS by reference).

Anyone may read (the permission `map:read`); a valid bearer token adds the non-public fields of
the cases in the caller's scope. Invalid query parameters are 400 problem+json (as the standard
asks), unknown collections and features 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from app.auth.policy import MapReader
from app.db import ReplicaReader
from app.errors import ApiError
from app.http import ApiRoute
from app.ogc import apidoc, query, service
from app.ogc.schemas import (
    CollectionOut,
    Collections,
    Conformance,
    Feature,
    FeatureCollection,
    LandingPage,
)
from app.responses import GEOJSON, FastJSON

router = APIRouter(prefix="/ogc", tags=["ogc"], route_class=ApiRoute)

JSON = "application/json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
]
_GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}}, "description": "GeoJSON (Content-Crs names its CRS)"}
}
_COMMON = {"f"}
_ITEMS = {"bbox", "bbox-crs", "datetime", "limit", "offset", "crs", "sortby", "properties"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, Any]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def _params(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query string as a dict (last value wins); unknown parameters are 400."""
    out: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        if k not in allowed and k not in _COMMON:
            raise ApiError(
                "invalid_parameter",
                detail=f"未知的查询参数：{k}",
                detail_en=f"Unknown query parameter: {k}",
                field=k,
            )
        out[k] = v
    f = out.get("f")
    if f is not None and f.lower() not in ("json", "geojson", JSON, GEOJSON):
        raise ApiError(
            "invalid_parameter",
            detail=f"不支持的格式：{f}（仅 json）",
            detail_en=f"Unsupported format: {f} (json only)",
            field="f",
        )
    return out


def _crs_header(crs: service.OutCrs) -> dict[str, str]:
    return {"Content-Crs": f"<{crs.uri}>"}


@router.get("", response_model=LandingPage, summary="OGC API – Features landing page")
async def landing(request: Request, who: MapReader) -> Response:
    _params(request, set())
    b = _base(request)
    return FastJSON(
        {
            "title": "wangge 网格化管理 OGC API – Features",
            "description": "Grids, communities, streets, buildings and cases",
            "links": [
                _link(f"{b}/ogc", "self", JSON, "This document"),
                _link(f"{b}/ogc/api", "service-desc", apidoc.OPENAPI_TYPE, "The API definition"),
                _link(f"{b}/ogc/conformance", "conformance", JSON, "Conformance classes"),
                _link(f"{b}/ogc/collections", "data", JSON, "The feature collections"),
            ],
        }
    )


@router.get("/conformance", response_model=Conformance, summary="Conformance classes")
async def conformance(request: Request, who: MapReader) -> Response:
    _params(request, set())
    return FastJSON({"conformsTo": CONFORMANCE})


@router.get(
    "/api",
    summary="OpenAPI 3.0 definition of the OGC API",
    responses={200: {"content": {apidoc.OPENAPI_TYPE: {}}, "description": "OpenAPI 3.0"}},
)
async def api(request: Request, who: MapReader) -> Response:
    _params(request, set())
    return FastJSON(apidoc.build(_base(request)), media_type=apidoc.OPENAPI_TYPE)


async def _collection(request: Request, reader: Any, c: service.Collection) -> dict[str, Any]:
    b = _base(request)
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "itemType": "feature",
        "extent": await service.extent(reader, c),
        "crs": service.CRS_URIS,
        "storageCrs": service.CRS84,
        "links": [
            _link(f"{b}/ogc/collections/{c.id}", "self", JSON, c.title),
            _link(f"{b}/ogc/collections/{c.id}/items", "items", GEOJSON, "Features (GeoJSON)"),
            _link(
                f"{b}/ogc/collections/{c.id}/queryables",
                query.QUERYABLES_REL,
                query.SCHEMA_JSON,
                "Queryables (the filters of items)",
            ),
        ],
    }


@router.get("/collections", response_model=Collections, summary="The feature collections")
async def collections(request: Request, reader: ReplicaReader, who: MapReader) -> Response:
    _params(request, set())
    b = _base(request)
    return FastJSON(
        {
            "links": [_link(f"{b}/ogc/collections", "self", JSON, "The feature collections")],
            "collections": [
                await _collection(request, reader, c) for c in service.COLLECTIONS.values()
            ],
            "crs": service.CRS_URIS,
        }
    )


@router.get("/collections/{collection_id}", response_model=CollectionOut, summary="One collection")
async def collection(
    collection_id: str, request: Request, reader: ReplicaReader, who: MapReader
) -> Response:
    c = service.get_collection(collection_id)
    _params(request, set())
    return FastJSON(await _collection(request, reader, c))


@router.get(
    "/collections/{collection_id}/queryables",
    summary="The queryables of a collection (OGC API – Features Part 3, a JSON Schema)",
    responses={200: {"content": {query.SCHEMA_JSON: {}}, "description": "JSON Schema"}},
)
async def queryables(collection_id: str, request: Request, who: MapReader) -> Response:
    c = service.get_collection(collection_id)
    _params(request, set())
    url = f"{_base(request)}/ogc/collections/{c.id}/queryables"
    return FastJSON(query.queryables(c, url), media_type=query.SCHEMA_JSON)


@router.get(
    "/collections/{collection_id}/items",
    response_model=FeatureCollection,
    summary="Features of a collection (bbox, datetime, limit/offset, crs, property filters, "
    "sortby, properties)",
    responses=_GEOJSON_RESPONSE,
)
async def items(
    collection_id: str, request: Request, reader: ReplicaReader, who: MapReader
) -> Response:
    c = service.get_collection(collection_id)
    p = _params(request, _ITEMS | set(c.filters))
    crs = service.parse_crs(p.get("crs"), "crs")
    bbox_crs = service.parse_crs(p.get("bbox-crs"), "bbox-crs")
    if "bbox-crs" in p and "bbox" not in p:
        raise ApiError(
            "invalid_parameter",
            detail="bbox-crs 须与 bbox 同用",
            detail_en="bbox-crs needs bbox",
            field="bbox-crs",
        )
    q = query.Query(
        crs=crs,
        bbox=service.parse_bbox(p.get("bbox"), bbox_crs),
        bbox_crs=bbox_crs,
        interval=service.parse_datetime(p.get("datetime")),
        filters={
            name: query.filter_values(c.filters[name], p[name]) for name in c.filters if name in p
        },
        sortby=query.parse_sortby(c, p.get("sortby")),
        properties=query.parse_properties(c, p.get("properties")),
        limit=min(
            service.parse_int(p.get("limit"), "limit", 1, service.DEFAULT_LIMIT),
            service.MAX_LIMIT,
        ),
        offset=service.parse_int(p.get("offset"), "offset", 0, 0),
    )
    features, matched = await service.items(reader, c, q, who)
    b = _base(request)
    url = f"{b}/ogc/collections/{c.id}/items"
    keep = [(k, v) for k, v in p.items() if k != "offset"]

    def page(offset: int) -> str:
        qs = urlencode([*keep, ("offset", str(offset))] if offset else keep)
        return f"{url}?{qs}" if qs else url

    links = [
        _link(page(q.offset), "self", GEOJSON, "This page"),
        _link(f"{b}/ogc/collections/{c.id}", "collection", JSON, c.title),
    ]
    if q.offset + len(features) < matched:
        links.append(_link(page(q.offset + q.limit), "next", GEOJSON, "Next page"))
    if q.offset > 0:
        links.append(_link(page(max(0, q.offset - q.limit)), "prev", GEOJSON, "Previous page"))
    body = {
        "type": "FeatureCollection",
        "features": features,
        "links": links,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return FastJSON(body, media_type=GEOJSON, headers=_crs_header(crs))


@router.get(
    "/collections/{collection_id}/items/{fid}",
    response_model=Feature,
    summary="One feature",
    responses=_GEOJSON_RESPONSE,
)
async def item(
    collection_id: str, fid: str, request: Request, reader: ReplicaReader, who: MapReader
) -> Response:
    c = service.get_collection(collection_id)
    p = _params(request, {"crs"})
    crs = service.parse_crs(p.get("crs"), "crs")
    feature = await service.item(reader, c, fid, crs, who)
    b = _base(request)
    feature["links"] = [
        _link(f"{b}/ogc/collections/{c.id}/items/{fid}", "self", GEOJSON, "This feature"),
        _link(f"{b}/ogc/collections/{c.id}", "collection", JSON, c.title),
    ]
    return FastJSON(feature, media_type=GEOJSON, headers=_crs_header(crs))

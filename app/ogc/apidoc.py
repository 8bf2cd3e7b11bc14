"""The OpenAPI 3.0 definition of /ogc (conformance class oas30): a subset document written for
these routes only, one items path per collection with its own property filters."""

from __future__ import annotations

from typing import Any

from app.ogc.query import SCHEMA_JSON, sortable
from app.ogc.service import COLLECTIONS, CRS84, CRS_URIS, DEFAULT_LIMIT, MAX_LIMIT

OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"

_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date-time": {"type": "string", "format": "date-time"},
}


def _json(ref: str, media: str = "application/json") -> dict[str, Any]:
    return {"content": {media: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _ok(description: str, ref: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, **_json(ref, media)}


_ERRORS = {
    "400": {"$ref": "#/components/responses/InvalidParameter"},
    "404": {"$ref": "#/components/responses/NotFound"},
}


def build(base: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/ogc": {
            "get": {
                "operationId": "getLandingPage",
                "summary": "Landing page",
                "responses": {"200": _ok("The landing page", "LandingPage")},
            }
        },
        "/ogc/conformance": {
            "get": {
                "operationId": "getConformance",
                "summary": "Conformance classes",
                "responses": {"200": _ok("The conformance classes", "Conformance")},
            }
        },
        "/ogc/api": {
            "get": {
                "operationId": "getApi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.0",
                        "content": {OPENAPI_TYPE: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/ogc/collections": {
            "get": {
                "operationId": "getCollections",
                "summary": "The feature collections",
                "responses": {"200": _ok("The collections", "Collections")},
            }
        },
    }
    for c in COLLECTIONS.values():
        filters = [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "description": f"Equality filter (a comma-separated list matches any): "
                f"{p.description or p.name}",
                "schema": {"type": "string"},
                "style": "form",
                "explode": False,
            }
            for p in c.filters.values()
        ]
        props = {
            p.name: {
                **_TYPES[p.type],
                "nullable": True,
                **({"description": p.description} if p.description else {}),
            }
            for p in c.props
        }
        paths[f"/ogc/collections/{c.id}"] = {
            "get": {
                "operationId": f"describe_{c.id}",
                "summary": f"The {c.id} collection",
                "responses": {"200": _ok("The collection", "Collection"), **_ERRORS},
            }
        }
        paths[f"/ogc/collections/{c.id}/queryables"] = {
            "get": {
                "operationId": f"get_{c.id}_queryables",
                "summary": f"The queryables of {c.id} (the filters of its items)",
                "responses": {
                    "200": {
                        "description": "A JSON Schema",
                        "content": {SCHEMA_JSON: {"schema": {"type": "object"}}},
                    },
                    **_ERRORS,
                },
            }
        }
        paths[f"/ogc/collections/{c.id}/items"] = {
            "get": {
                "operationId": f"get_{c.id}_features",
                "summary": f"Features of {c.id}: {c.description}",
                "parameters": [
                    {"$ref": "#/components/parameters/bbox"},
                    {"$ref": "#/components/parameters/bbox-crs"},
                    {"$ref": "#/components/parameters/datetime"},
                    {"$ref": "#/components/parameters/limit"},
                    {"$ref": "#/components/parameters/offset"},
                    {"$ref": "#/components/parameters/crs"},
                    {
                        "name": "sortby",
                        "in": "query",
                        "required": False,
                        "description": "Comma-separated properties, `-` for descending: "
                        + ", ".join(sortable(c)),
                        "schema": {"type": "string"},
                        "style": "form",
                        "explode": False,
                    },
                    {
                        "name": "properties",
                        "in": "query",
                        "required": False,
                        "description": "Only these properties (comma-separated)",
                        "schema": {
                            "type": "array",
                            "items": {"type": "string", "enum": [p.name for p in c.props]},
                        },
                        "style": "form",
                        "explode": False,
                    },
                    *filters,
                ],
                "responses": {
                    "200": {
                        "description": "A page of features (GeoJSON); `next` link for more",
                        "headers": {"Content-Crs": {"$ref": "#/components/headers/Content-Crs"}},
                        "content": {
                            "application/geo+json": {
                                "schema": {
                                    "allOf": [
                                        {"$ref": "#/components/schemas/FeatureCollection"},
                                        {
                                            "type": "object",
                                            "properties": {
                                                "features": {
                                                    "type": "array",
                                                    "items": {
                                                        "type": "object",
                                                        "properties": {
                                                            "properties": {
                                                                "type": "object",
                                                                "properties": props,
                                                            }
                                                        },
                                                    },
                                                }
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    **_ERRORS,
                },
            }
        }
        paths[f"/ogc/collections/{c.id}/items/{{featureId}}"] = {
            "get": {
                "operationId": f"get_{c.id}_feature",
                "summary": f"One feature of {c.id}",
                "parameters": [
                    {"$ref": "#/components/parameters/featureId"},
                    {"$ref": "#/components/parameters/crs"},
                ],
                "responses": {
                    "200": {
                        "description": "The feature",
                        "headers": {"Content-Crs": {"$ref": "#/components/headers/Content-Crs"}},
                        **_json("Feature", "application/geo+json"),
                    },
                    **_ERRORS,
                },
            }
        }
    link = {
        "type": "object",
        "required": ["href", "rel"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
        },
    }
    links = {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}
    crs_param = {
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "uri", "enum": CRS_URIS, "default": CRS84},
        "style": "form",
        "explode": False,
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "wangge OGC API – Features",
            "version": "1.0.0",
            "description": "Grids, communities, streets, buildings and cases of 网格化管理. "
            "Invalid query parameters are answered 400 with application/problem+json.",
        },
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "parameters": {
                "bbox": {
                    "name": "bbox",
                    "in": "query",
                    "required": False,
                    "description": "minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat)",
                    "schema": {
                        "type": "array",
                        "minItems": 4,
                        "maxItems": 6,
                        "items": {"type": "number"},
                    },
                    "style": "form",
                    "explode": False,
                },
                "bbox-crs": {"name": "bbox-crs", **crs_param},
                "crs": {"name": "crs", **crs_param},
                "datetime": {
                    "name": "datetime",
                    "in": "query",
                    "required": False,
                    "description": "An RFC 3339 instant or a closed interval a/b (.. = open)",
                    "schema": {"type": "string"},
                    "style": "form",
                    "explode": False,
                },
                "limit": {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                    "style": "form",
                    "explode": False,
                },
                "offset": {
                    "name": "offset",
                    "in": "query",
                    "required": False,
                    "description": "Features to skip (the `next` link sets it)",
                    "schema": {"type": "integer", "minimum": 0, "default": 0},
                    "style": "form",
                    "explode": False,
                },
                "featureId": {
                    "name": "featureId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
            },
            "headers": {
                "Content-Crs": {
                    "description": "The CRS of the geometries, e.g. <" + CRS84 + ">",
                    "schema": {"type": "string"},
                }
            },
            "responses": {
                "InvalidParameter": {
                    "description": "A query parameter is invalid (RFC 9457 problem)",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
                "NotFound": {
                    "description": "No such collection or feature",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
            },
            "schemas": {
                "Link": link,
                "LandingPage": {
                    "type": "object",
                    "required": ["links"],
                    "properties": {
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "links": links,
                    },
                },
                "Conformance": {
                    "type": "object",
                    "required": ["conformsTo"],
                    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
                },
                "Collection": {
                    "type": "object",
                    "required": ["id", "links"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "links": links,
                        "extent": {"type": "object"},
                        "itemType": {"type": "string"},
                        "crs": {"type": "array", "items": {"type": "string"}},
                        "storageCrs": {"type": "string"},
                    },
                },
                "Collections": {
                    "type": "object",
                    "required": ["links", "collections"],
                    "properties": {
                        "links": links,
                        "collections": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Collection"},
                        },
                        "crs": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Feature": {
                    "type": "object",
                    "required": ["type", "geometry", "properties"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Feature"]},
                        "id": {"type": "integer"},
                        "geometry": {"type": "object", "nullable": True},
                        "properties": {"type": "object", "nullable": True},
                        "links": links,
                    },
                },
                "FeatureCollection": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Feature"},
                        },
                        "links": links,
                        "timeStamp": {"type": "string", "format": "date-time"},
                        "numberMatched": {"type": "integer", "minimum": 0},
                        "numberReturned": {"type": "integer", "minimum": 0},
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "code", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
            },
        },
    }

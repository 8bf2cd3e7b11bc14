"""The OpenAPI document: every error response is documented as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.auth.policy import RULES
from app.http import api_routes
from app.open311.formats import document_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `detail` is human-readable "
    "(Chinese, or English with Accept-Language: en).",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "example": "urn:wangge:problem:not_found"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {
            "type": "string",
            "description": "This request's id (also the X-Request-ID answer header and the "
            "request_id of every log line about it): quote it to the operators",
        },
        "field": {"type": "string", "description": "The field at fault"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
                "additionalProperties": True,
            },
        },
    },
    "additionalProperties": True,
}

_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    "400": "Malformed request (e.g. invalid JSON)",
    "401": "Not signed in, or the token is invalid or expired",
    "403": "Your posts do not allow this",
    "404": "Not found (or outside your scope)",
    "409": "Conflicts with existing data",
    "413": "Request body too large",
    "415": "Unsupported content type",
    "422": "Invalid input; `errors` lists each field at fault",
    "429": "Too many requests; retry after `Retry-After` seconds",
    "503": "Database unavailable; retry later",
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _REF}}}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(name, None)
    perms = {
        (m, r.path_format): getattr(r, "permission", None)
        for r in api_routes(app.routes)
        for m in r.methods or ()
    }
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            codes = {"422", "503"}
            if perms.get((method.upper(), path)) != "public":
                codes |= {"401", "403"}
            else:
                op.pop("security", None)
            rule = RULES.get(perms.get((method.upper(), path)) or "")
            if "{" in path or (rule is not None and rule.scoped):
                # A scoped permission answers 404 for an object outside the caller's scope,
                # whether it is named in the path, the query or the body.
                codes.add("404")
            if rule is not None and rule.rate is not None:
                codes.add("429")
            if method in ("post", "put", "patch"):
                codes |= {"400", "413", "415"}
            if method in ("post", "put", "patch", "delete"):
                codes.add("409")
            for code in sorted(codes):
                desc = responses.get(code, {}).get("description") or _DESCRIPTIONS[code]
                if code == "422" and desc == "Validation Error":
                    desc = _DESCRIPTIONS[code]
                responses[code] = _problem(desc)
            for code, resp in responses.items():
                if code[0] in "45" and "content" not in resp:
                    responses[code] = _problem(resp.get("description", _DESCRIPTIONS.get(code, "")))
    document_openapi(doc)  # the Open311 paths answer in the spec's shapes
    app.openapi_schema = doc
    return doc

"""The two GeoReport v2 formats: JSON, and XML built with ElementTree (never by pasting strings);
the spec's error answer `[{code, description}]` / `<errors><error>…`; the route class that gives
every Open311 route that error shape instead of problem+json."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Literal

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError

from app.errors import ApiError
from app.http import ApiRoute
from app.i18n import negotiate
from app.schemas import SHANGHAI

Format = Literal["json", "xml"]
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"

# The element name of a list's items, by the list's element name (the spec's XML shapes).
ITEMS = {
    "service_requests": "request",
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
    "service_request_updates": "request_update",
    "duplicates": "duplicate",
}


def w3c(t: datetime | None) -> str | None:
    """W3C / RFC 3339 date-time in Asia/Shanghai (2026-11-30T13:05:00.123456+08:00): to the
    microsecond, so that `updated_after` the last time seen skips exactly what was seen."""
    return None if t is None else t.astimezone(SHANGHAI).isoformat()


# What XML 1.0 cannot carry at all (its Char production): C0 controls but tab, LF and CR,
# surrogates, U+FFFE and U+FFFF. Dropped on the way out, so a stored value (from before the input
# refused them) can never make a document that is not well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def element(tag: str, value: Any) -> ET.Element:
    el = ET.Element(tag)
    if isinstance(value, dict):
        for k, v in value.items():
            el.append(element(k, v))
    elif isinstance(value, list | tuple):
        child = ITEMS.get(tag, "item")
        for v in value:
            el.append(element(child, v))
    else:
        el.text = _text(value)
    return el


def to_xml(root: str, data: Any) -> bytes:
    return ET.tostring(element(root, data), encoding="utf-8", xml_declaration=True)


def respond(
    fmt: str,
    root: str,
    data: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, data), status, headers=headers, media_type=XML_TYPE)
    return Response(orjson.dumps(data), status, headers=headers, media_type=JSON_TYPE)


def encode(fmt: str, root: str, data: Any) -> bytes:
    return to_xml(root, data) if fmt == "xml" else orjson.dumps(data)


def media_type(fmt: str) -> str:
    return XML_TYPE if fmt == "xml" else JSON_TYPE


# --- errors --------------------------------------------------------------------------------------

# Statuses the GeoReport spec names; others that matter to clients (413, 409, 429, 503) are kept.
_STATUS = {401: 403, 405: 400, 415: 400, 422: 400}


def request_format(request: Request) -> str:
    fmt = request.path_params.get("fmt")
    if fmt in ("json", "xml"):
        return str(fmt)
    return "xml" if request.url.path.endswith(".xml") else "json"


def error_response(request: Request, err: ApiError) -> Response:
    lang = negotiate(request.headers.get("accept-language"))
    body = err.body(lang)
    status = _STATUS.get(err.http_status, err.http_status)
    description = body["detail"]
    if err.field and err.field not in description:
        description = (
            f"{description}（{err.field}）" if lang == "zh" else f"{description} ({err.field})"
        )
    return respond(
        request_format(request),
        "errors",
        [{"code": status, "description": description}],
        status,
        headers=err.headers or None,
    )


def validation_error(exc: RequestValidationError) -> ApiError:
    parts = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "form")]
        parts.append(f"{'.'.join(loc) or '?'}: {e.get('msg', '')}")
    text = "; ".join(parts)
    return ApiError(
        "validation_error",
        status=400,
        detail=f"请求参数有误：{text}",
        detail_en=f"Bad request: {text}",
        field=",".join(str(e["loc"][-1]) for e in exc.errors() if e.get("loc")) or None,
    )


class Open311Route(ApiRoute):
    """An API route (one policy permission, as every route) whose errors come as the spec's
    `[{code, description}]` array (or `<errors>` in XML) with 400 / 403 / 404 (and 409, 413, 429
    where they apply)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def open311(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as e:
                return error_response(request, e)
            except RequestValidationError as e:
                return error_response(request, validation_error(e))

        return open311


# --- OpenAPI: the Open311 paths answer in their own shapes ----------------------------------------

_ERRORS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}


def document_openapi(doc: dict[str, Any]) -> None:
    """Describe /open311/v2 answers as JSON or XML and their errors as the spec's array (no
    401/415/422: those come as 403/400), the QR pages as HTML."""
    for path, ops in doc.get("paths", {}).items():
        if not path.startswith("/open311/"):
            continue
        qr = path.startswith("/open311/qr/")
        for method, op in ops.items():
            responses = op.get("responses", {})
            for code in ("401", "415"):
                responses.pop(code, None)
            if responses.pop("422", None) is not None:  # invalid parameters come as 400 here
                responses.setdefault("400", {"description": "Invalid parameters"})
            if method != "post" or qr:
                responses.pop("403", None)
            for code, resp in responses.items():
                if qr and code[0] == "2" and path.endswith(".svg"):
                    resp["content"] = {"image/svg+xml": {"schema": {"type": "string"}}}
                elif qr:
                    resp["content"] = {"text/html": {"schema": {"type": "string"}}}
                elif code[0] in "45":
                    resp["content"] = {
                        "application/json": {"schema": _ERRORS_SCHEMA},
                        "text/xml": {"schema": {"type": "string"}},
                    }
                elif code[0] == "2":
                    resp["content"] = {
                        "application/json": {"schema": {}},
                        "text/xml": {"schema": {"type": "string"}},
                    }

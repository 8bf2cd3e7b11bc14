"""Fast JSON responses (orjson) and the media types the API speaks."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

GEOJSON = "application/geo+json"


class FastJSON(JSONResponse):
    """A JSONResponse (so OpenAPI documents each route's response model) rendered by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes | bytearray):
            return bytes(content)
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class GeoJSONResponse(FastJSON):
    media_type = GEOJSON


@cache
def _adapter(type_: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_)


def json_response(type_: Any, data: Any, status_code: int = 200) -> FastJSON:
    """Validate `data` as the route's response model and encode it in one pass (pydantic-core):
    big lists skip FastAPI's slower response validation and encoding."""
    a = _adapter(type_)
    return FastJSON(
        a.dump_json(a.validate_python(data, from_attributes=True)), status_code=status_code
    )


PUBLIC_SHORT_CACHE = "public, max-age=60"
"""A public answer that changes only when the registry does (a grid's lookup, its service card):
clients and proxies may reuse it for a minute, and revalidate it with If-None-Match."""


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def cached_json(request: Request, body: bytes, cache_control: str = PUBLIC_SHORT_CACHE) -> Response:
    """A JSON answer with its ETag (a hash of the bytes) and `Cache-Control`; 304 without a body
    when the request's If-None-Match names it (weak comparison, RFC 9110 §13.1.2). The answer
    depends on the caller's language: `Vary: Accept-Language`."""
    tag = etag_of(body)
    headers = {"ETag": tag, "Cache-Control": cache_control, "Vary": "Accept-Language"}
    inm = request.headers.get("if-none-match")
    if inm and (
        inm.strip() == "*" or tag in (t.strip().removeprefix("W/") for t in inm.split(","))
    ):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)

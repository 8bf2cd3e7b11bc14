"""Fast JSON responses (orjson) and the media types the API speaks."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.responses import JSONResponse

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

"""Fast JSON responses (orjson) and the media types the API speaks."""

from __future__ import annotations

from typing import Any

import orjson
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

"""Helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx


def problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert `resp` is an RFC 9457 problem with this status and machine code; return the body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["title"] and body["detail"]
    return body


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    """A GeoJSON Polygon: the square with south-west corner (lon, lat), counter-clockwise."""
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
        ],
    }


SANDBOX = (117.50, 28.50)
"""South-west corner of an empty 0.02° square east of the demo district, for tests' own places."""


async def make_sandbox(client: httpx.AsyncClient, demo: Any) -> dict[str, int]:
    """A street and community (2 × 2 km, empty) under the demo district; ids by level."""
    district = demo["360602000000"]
    street = await client.post(
        "/api/v1/areas",
        json={
            "level": "street",
            "code": "360602901000",
            "name": "测试街道",
            "parent_id": district,
            "boundary": square(*SANDBOX, 0.02),
        },
    )
    assert street.status_code == 201, street.text
    community = await client.post(
        "/api/v1/areas",
        json={
            "level": "community",
            "code": "360602901001",
            "name": "测试社区",
            "parent_id": street.json()["id"],
            "boundary": square(*SANDBOX, 0.02),
            "service_hours": "周一至周五 9:00-17:00",
        },
    )
    assert community.status_code == 201, community.text
    return {"street": street.json()["id"], "community": community.json()["id"]}

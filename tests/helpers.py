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


def bowtie(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    """A GeoJSON Polygon whose ring crosses itself (a bow tie): GEOS calls it a self-intersection."""
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + size, lat + size], [lon + size, lat], [lon, lat + size], [lon, lat]]
        ],
    }


DEMO_DISTRICT = "360602"
"""The code prefix of the demo district 月湖区 (its areas and grids). `make test-citus` also loads a
second district (另一区, `wangge seed-demo --second-district`): tests that count the demo's areas
or grids count those with this prefix, so the counts hold on both engines."""


DEMO_USERS = (
    "admin",
    "centre",
    "street",
    "community",
    "governance",
    "leader",
    "worker",
    "worker2",
    "dept",
    "dept2",
)
"""The demo accounts (app/demo/accounts.py), in the README's order."""


async def assert_stats_facts_exact(conn: Any) -> None:
    """Once the consumer has run (`stats_catch_up`, as every reader of the figures does first),
    the evaluation fact tables equal their recomputation from the raw tables (the views), and
    no changed case is left waiting."""
    from sqlalchemy import text

    await conn.execute(text("SELECT stats_catch_up(NULL)"))
    pending = (await conn.execute(text("SELECT count(*) FROM case_changes"))).scalar_one()
    assert pending == 0, "changed cases left after a catch-up"
    for table in ("stats_case_facts", "stats_dept_facts"):
        # Only the two table names above go into the text.
        diff = (
            await conn.execute(
                text(
                    f"SELECT count(*) FROM ((TABLE {table} EXCEPT ALL TABLE {table}_v) "
                    f"UNION ALL (TABLE {table}_v EXCEPT ALL TABLE {table})) x"
                )
            )
        ).scalar_one()
        assert diff == 0, table


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


def jpeg(
    lon: float | None = None,
    lat: float | None = None,
    when: str | None = None,
    size: tuple[int, int] = (64, 48),
    colour: tuple[int, int, int] = (200, 80, 40),
) -> bytes:
    """A real JPEG, optionally with EXIF GPS and DateTimeOriginal ("YYYY:MM:DD HH:MM:SS")."""
    import io

    from PIL import Image

    img = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x010F] = "TestPhone"  # Make: a device detail that must not be served
    if when:
        exif.get_ifd(0x8769)[0x9003] = when
    if lon is not None and lat is not None:

        def dms(v: float) -> tuple[float, float, float]:
            d = int(v)
            m = int((v - d) * 60)
            return (float(d), float(m), round((v - d - m / 60) * 3600, 4))

        exif.get_ifd(0x8825).update({1: "N", 2: dms(lat), 3: "E", 4: dms(lon)})
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def image(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    import io

    from PIL import Image

    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, fmt)
    return out.getvalue()

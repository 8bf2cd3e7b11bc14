"""Issue 22: a GIS analyst's long-lived access through real clients over real HTTP, with a
personal API token of the grid worker: GDAL's OAPIF driver and Debian's QGIS (its OAPIF and
vector tile providers, headless: tests/ops/qgis_probe.py) read the worker's cases, with their
non-public fields, once with the token as a header and once through the signed URL prefix
(paging by the links the API writes; the tile layer has no way to send a header)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import insert_case, point_in_grid
from tests.reliability.live import Server, create_database, drop_database, make_tokens

GRID = "360602001001001"  # the worker's first grid
CASES = 7
QGIS_PYTHON = "/usr/bin/python3"
PROBE = Path(__file__).resolve().parents[1] / "ops" / "qgis_probe.py"


@dataclass
class Gis:
    base: str
    jwt: dict[str, str]
    bbox: tuple[float, float, float, float]


async def _prepare(base_url: str, name: str) -> tuple[str, dict[str, str], tuple[float, ...]]:
    from app.config import async_url

    url = await create_database(base_url, name)
    eng = create_async_engine(async_url(url))
    async with eng.begin() as c:
        lon, lat = await point_in_grid(c, GRID)
        for i in range(CASES):
            await insert_case(c, GRID, location=(lon + i * 1e-5, lat), title=f"巡查发现 {i}")
        box = (
            await c.execute(
                text(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                    "ST_Extent(b.boundary) e FROM grids g JOIN grid_boundaries b ON "
                    "b.grid_id = g.id AND b.valid_to IS NULL WHERE g.code = :c) x"
                ),
                {"c": GRID},
            )
        ).one()
    await eng.dispose()
    return url, await make_tokens(url, roles=("worker",)), tuple(box)


@pytest.fixture(scope="module")
def gis(engine, tmp_path_factory) -> Iterator[Gis]:
    base_url = os.environ["TEST_DATABASE_URL"]
    name = f"wangge_gis_{uuid.uuid4().hex[:8]}"
    url, tokens, box = asyncio.run(_prepare(base_url, name))
    log = tmp_path_factory.mktemp("gis") / "server.log"
    server = Server(url, {"WANGGE_SCHEDULER_ENABLED": "false"}, log=log)
    try:
        server.start()
        yield Gis(server.base, {"Authorization": f"Bearer {tokens['worker']}"}, box)  # type: ignore[arg-type]
    finally:
        server.stop()
        asyncio.run(drop_database(base_url, name))


def _token(gis: Gis, scope: str = "map") -> dict[str, str]:
    r = httpx.post(
        f"{gis.base}/api/v1/me/api-tokens", json={"name": "GIS", "scope": scope}, headers=gis.jwt
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _ogrinfo(*args: str, headers: str | None = None) -> str:
    tool = shutil.which("ogrinfo")
    assert tool, "ogrinfo is missing: `make test` installs gdal-bin (scripts/test.sh)"
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "30", "CPL_VSIL_CURL_USE_HEAD": "NO"}
    if headers:
        env["GDAL_HTTP_HEADERS"] = headers
    r = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _count(listing: str) -> int:
    m = re.search(r"^Feature Count: (\d+)$", listing, flags=re.M)
    assert m, listing
    return int(m.group(1))


def test_gdal_reads_the_owners_cases_with_a_token_and_a_signed_url(gis: Gis) -> None:
    made = _token(gis)
    token, prefix, ogc = made["token"], made["signed_url_prefix"], f"{gis.base}/ogc"
    scoped = httpx.get(f"{ogc}/collections/cases/items?limit=1", headers=gis.jwt).json()
    public = httpx.get(f"{ogc}/collections/cases/items?limit=1").json()
    assert scoped["numberMatched"] == CASES
    # 1. the header, as GDAL_HTTP_HEADERS (or QGIS's API header authentication) sends it
    with_header = _ogrinfo(
        "-ro", "-so", f"OAPIF:{ogc}", "cases", headers=f"Authorization: Bearer {token}"
    )
    assert _count(with_header) == CASES
    assert "title: String" in with_header and "description: String" in with_header
    assert _count(_ogrinfo("-ro", "-so", f"OAPIF:{ogc}", "cases")) == public["numberMatched"]
    # 2. the signed prefix, no header: pages of 2 followed through the `next` links
    signed = _ogrinfo("-ro", "-so", "-oo", "PAGE_SIZE=2", f"OAPIF:{prefix}/ogc", "cases")
    assert _count(signed) == CASES and "title: String" in signed
    features = _ogrinfo("-ro", "-q", "-oo", "PAGE_SIZE=2", f"OAPIF:{prefix}/ogc", "cases")
    assert len(re.findall(r"^OGRFeature\(cases\):", features, flags=re.M)) == CASES
    assert "巡查发现 0" in features
    # revoked: the same URL is refused at once
    r = httpx.delete(f"{gis.base}/api/v1/me/api-tokens/{made['id']}", headers=gis.jwt)
    assert r.status_code == 204
    refused = httpx.get(f"{prefix}/ogc/collections/cases/items?limit=1")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"


def _qgis(*args: str) -> dict[str, object]:
    assert Path(QGIS_PYTHON).exists(), "`make test` installs python3-qgis (scripts/test.sh)"
    runtime = Path(tempfile.mkdtemp(prefix="qgis-"))
    r = subprocess.run(
        [QGIS_PYTHON, str(PROBE), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={
            "PATH": "/usr/bin:/bin",
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_RUNTIME_DIR": str(runtime),
            "HOME": str(runtime),
        },
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def test_qgis_loads_the_ogc_layer_and_the_vector_tiles_with_a_personal_token(gis: Gis) -> None:
    """Debian's QGIS (3.22) sends no custom header for these providers: the signed prefix is
    how it reads with a personal token, for the OGC layer and the vector tiles alike."""
    made = _token(gis)
    prefix, box = made["signed_url_prefix"], [str(v) for v in gis.bbox]
    tiles = "/tiles/cases/{z}/{x}/{y}.mvt"
    seen = _qgis(f"{prefix}/ogc", "cases", prefix + tiles, *box)
    assert seen["ogc_valid"] and seen["ogc_features"] == CASES == seen["ogc_with_geometry"], seen
    assert {"title", "description"} <= set(seen["ogc_fields"]), seen  # type: ignore[call-overload]
    assert seen["tiles_valid"] and seen["tiles_painted_pixels"] > 0, seen  # type: ignore[operator]
    assert seen["tiles_errors"] == [], seen
    # without access: the public fields only, and the cases' tile layer draws nothing
    anon = _qgis(f"{gis.base}/ogc", "cases", gis.base + tiles, *box)
    assert "title" not in anon["ogc_fields"], anon  # type: ignore[operator]
    assert anon["tiles_painted_pixels"] == 0, anon

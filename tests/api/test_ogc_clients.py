"""OGC API – Features through real clients over real HTTP: GDAL's OAPIF driver (ogrinfo and
ogr2ogr of Debian's gdal-bin, the engine of QGIS) and OWSLib. The app runs in a uvicorn
subprocess on a free loopback port against the test database (its committed demo data)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import shapely
from shapely import wkt
from sqlalchemy import text

GRID = "360602001001001"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {**os.environ, "DATABASE_URL": os.environ["TEST_DATABASE_URL"], "ENV": "test"}
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("uvicorn did not become ready")
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log.read_text()[-2000:]}")
        yield f"{base}/ogc"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `make test` installs gdal-bin (scripts/test.sh)"
    return path


def _run(*args: str) -> str:
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "30", "CPL_VSIL_CURL_USE_HEAD": "NO"}
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


async def _db_grids(engine) -> tuple[int, shapely.Geometry]:
    async with engine.connect() as c:
        n = (
            await c.execute(
                text(
                    "SELECT count(*) FROM grids g JOIN grid_boundaries b ON b.grid_id = g.id "
                    "AND b.valid_to IS NULL WHERE g.deleted_at IS NULL"
                )
            )
        ).scalar()
        geom = (
            await c.execute(
                text(
                    "SELECT ST_AsText(b.boundary) FROM grids g JOIN grid_boundaries b "
                    "ON b.grid_id = g.id AND b.valid_to IS NULL WHERE g.code = :c"
                ),
                {"c": GRID},
            )
        ).scalar()
    return int(n or 0), wkt.loads(geom)


async def _db_count(engine, sql: str) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text(sql))).scalar() or 0)


async def test_gdal_lists_the_layers_and_copies_them(server, engine, tmp_path) -> None:
    src = f"OAPIF:{server}"
    listing = _run(_tool("ogrinfo"), "-ro", "-q", src)
    layers = re.findall(r"^\d+: (\w+)", listing, flags=re.M)
    assert layers == ["grids", "communities", "streets", "buildings", "cases"], listing
    out = tmp_path / "copy.gpkg"
    _run(_tool("ogr2ogr"), "-f", "GPKG", str(out), src, "grids", "buildings", "communities")
    n, geom = await _db_grids(engine)
    info = _run("ogrinfo", "-ro", "-so", str(out), "grids")
    assert f"Feature Count: {n}\n" in info and "Multi Polygon" in info
    buildings = await _db_count(engine, "SELECT count(*) FROM buildings")
    assert buildings > 1000  # more than one page
    info = _run("ogrinfo", "-ro", "-so", str(out), "buildings")
    assert f"Feature Count: {buildings}\n" in info
    communities = await _db_count(engine, "SELECT count(*) FROM areas WHERE level = 'community'")
    assert f"Feature Count: {communities}\n" in _run(
        "ogrinfo", "-ro", "-so", str(out), "communities"
    )
    # one grid's geometry and attributes, as copied
    dump = _run("ogrinfo", "-ro", "-q", str(out), "grids", "-where", f"code = '{GRID}'")
    assert "households: Integer" in _run("ogrinfo", "-ro", "-so", str(out), "grids")
    got = wkt.loads(re.search(r"(MULTIPOLYGON \(.*\)\))", dump).group(1))  # type: ignore[union-attr]
    assert got.equals_exact(geom, 1e-7), (got.wkt, geom.wkt)
    assert "community (String) = 立新社区" in dump


async def test_owslib_lists_and_reads_every_feature(server, engine) -> None:
    from owslib.ogcapi.features import Features

    api = Features(server)
    assert {c["id"] for c in api.collections()["collections"]} == {
        "grids",
        "communities",
        "streets",
        "buildings",
        "cases",
    }
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    assert api.collection("grids")["storageCrs"].endswith("CRS84")
    features: list[dict] = []
    offset = 0
    for _ in range(20):
        page = api.collection_items("grids", limit=100, offset=offset)
        features += page["features"]
        offset += page["numberReturned"]
        if not any(x["rel"] == "next" for x in page["links"]):
            break
    n, geom = await _db_grids(engine)
    assert len(features) == n == page["numberMatched"]
    mine = next(f for f in features if f["properties"]["code"] == GRID)
    assert shapely.geometry.shape(mine["geometry"]).equals_exact(geom, 1e-7)
    one = api.collection_item("grids", str(mine["id"]))
    assert one["properties"]["code"] == GRID
    # a bbox around the grid finds it
    x1, y1, x2, y2 = geom.bounds
    near = api.collection_items("grids", bbox=[x1, y1, x2, y2], limit=1000)
    assert GRID in {f["properties"]["code"] for f in near["features"]}
    assert near["numberMatched"] < n


def test_owslib_reads_the_queryables(server) -> None:
    from owslib.ogcapi.features import Features

    api = Features(server)
    q = api.collection_queryables("grids")
    assert {"code", "kind", "households"} <= set(q["properties"])
    page = api.collection_items("grids", limit=5, sortby="-households", properties="code")
    assert all(set(f["properties"]) == {"code"} for f in page["features"])

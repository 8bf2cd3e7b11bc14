"""GeoJSON import (all or nothing, every bad feature reported) and export, API and CLI."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.helpers import SANDBOX, bowtie, make_sandbox, problem, square

LON, LAT = SANDBOX
ROOT = Path(__file__).resolve().parents[2]


def feature(code: str, geometry: dict, community: str = "360602901001", **props) -> dict:
    return {
        "type": "Feature",
        "properties": {
            "code": code,
            "name": f"导入网格{code}",
            "kind": "city",
            "community_code": community,
            "households": 300,
            **props,
        },
        "geometry": geometry,
    }


def fc(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


async def _count(conn, code_prefix: str) -> int:
    return (
        await conn.execute(
            text("SELECT count(*) FROM grids WHERE code LIKE :p"), {"p": code_prefix + "%"}
        )
    ).scalar_one()


async def test_import_creates_grids(client: httpx.AsyncClient, demo, conn) -> None:
    await make_sandbox(client, demo)
    body = fc(
        *(feature(f"I{i}", square(LON + 0.01 * (i % 2), LAT + 0.01 * (i // 2))) for i in range(4))
    )
    r = await client.post("/api/v1/grids/import", json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 4, "updated": 0, "unchanged": 0, "repaired": []}
    cov = (await client.get(f"/api/v1/areas/{demo['360602000000']}/coverage")).json()
    assert cov["properties"]["ok"] is False  # the sandbox street is not part of the demo tiling
    sandbox_cov = (await client.get("/api/v1/areas", params={"q": "360602901001"})).json()["items"][
        0
    ]["id"]
    assert (await client.get(f"/api/v1/areas/{sandbox_cov}/coverage")).json()["properties"]["ok"]


async def test_failing_feature_at_the_end_leaves_nothing(
    client: httpx.AsyncClient, demo, conn
) -> None:
    await make_sandbox(client, demo)
    good = [feature(f"A{i}", square(LON + 0.002 * i, LAT, 0.002)) for i in range(5)]
    bad = feature(
        "A9",
        bowtie(LON, LAT),
    )
    body = problem(
        await client.post("/api/v1/grids/import", json=fc(*good, bad)), 422, "import_failed"
    )
    assert [e["index"] for e in body["errors"]] == [5]
    assert body["errors"][0]["code"] == "self_intersection"
    assert body["errors"][0]["location"] == [LON + 0.005, LAT + 0.005]
    assert await _count(conn, "A") == 0


async def test_every_bad_feature_is_reported_at_once(client: httpx.AsyncClient, demo, conn) -> None:
    await make_sandbox(client, demo)
    features = [
        feature("B0", square(LON, LAT, 0.002)),  # fine
        feature(
            "B1",
            {
                "type": "Polygon",
                "coordinates": [
                    [[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [LON, LAT + 0.01]]
                ],
            },
        ),
        feature("B2", {"type": "Point", "coordinates": [LON, LAT]}),
        feature("B3", square(LON, 200, 0.002)),
        feature("B4", square(LAT, LON, 0.002)),
        feature("B5", square(LON + 0.004, LAT, 0.002), community="360602999999"),
        feature("B0", square(LON + 0.006, LAT, 0.002)),  # duplicate code in the file
        feature("B7", square(LON + 0.03, LAT, 0.002)),  # outside its community
        feature("360602001001001", square(LON + 0.008, LAT, 0.002)),  # code exists
        feature("B9", square(LON + 0.01, LAT, 0.002), households=-1, colour="red"),
        {"type": "Feature", "properties": None, "geometry": None},
        "not a feature",
    ]
    body = problem(
        await client.post("/api/v1/grids/import", json=fc(*features)), 422, "import_failed"
    )
    by_index: dict[int, set[str]] = {}
    for e in body["errors"]:
        by_index.setdefault(e["index"], set()).add(e["code"])
    assert by_index[0] == by_index[6] == {"duplicate_code"}  # both carriers of the code
    assert "unclosed_ring" in by_index[1]
    assert "wrong_type" in by_index[2]
    assert "out_of_range" in by_index[3]
    assert "swapped_lat_lon" in by_index[4]
    assert "unknown_parent" in by_index[5]
    assert "outside_parent" in by_index[7]
    assert "code_exists" in by_index[8]
    assert {"greater_than_equal", "extra_forbidden"} <= by_index[9]
    assert 10 in by_index and 11 in by_index
    assert await _count(conn, "B") == 0


async def test_repair_reports_what_changed(client: httpx.AsyncClient, demo) -> None:
    await make_sandbox(client, demo)
    unclosed = {
        "type": "Polygon",
        "coordinates": [
            [[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [LON, LAT + 0.01]]
        ],
    }
    bow = {
        "type": "Polygon",
        "coordinates": [
            [
                [LON, LAT + 0.01],
                [LON + 0.01, LAT + 0.02],
                [LON + 0.01, LAT + 0.01],
                [LON, LAT + 0.02],
                [LON, LAT + 0.01],
            ]
        ],
    }
    problem(
        await client.post(
            "/api/v1/grids/import", json=fc(feature("R1", unclosed), feature("R2", bow))
        ),
        422,
        "import_failed",
    )
    r = await client.post(
        "/api/v1/grids/import",
        params={"repair": "true"},
        json=fc(feature("R1", unclosed), feature("R2", bow)),
    )
    assert r.status_code == 201, r.text
    rep = {x["code"]: x for x in r.json()["repaired"]}
    assert set(rep) == {"R1", "R2"}
    assert rep["R1"]["changes"] and rep["R2"]["changes"]
    assert rep["R2"]["area_after_m2"] > 0


async def test_export_then_upsert_round_trip(client: httpx.AsyncClient, demo) -> None:
    r = await client.get("/api/v1/grids/export", params={"area_id": demo["360602001001"]})
    assert r.headers["content-type"].startswith("application/geo+json")
    exported = r.json()
    n = len(exported["features"])
    assert n >= 7
    f0 = exported["features"][0]
    assert set(f0["properties"]) == {
        "code",
        "name",
        "kind",
        "community_code",
        "households",
        "population",
        "notes",
    }
    ring = f0["geometry"]["coordinates"][0][0]
    assert all(len(str(c).split(".")[-1]) <= 7 for pt in ring for c in pt)
    problem(await client.post("/api/v1/grids/import", json=exported), 422, "import_failed")
    again = await client.post("/api/v1/grids/import", params={"mode": "upsert"}, json=exported)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": n, "repaired": []}
    edited = copy.deepcopy(exported)
    edited["features"][0]["properties"]["households"] = 333
    upd = await client.post("/api/v1/grids/import", params={"mode": "upsert"}, json=edited)
    assert upd.json()["updated"] == 1 and upd.json()["unchanged"] == n - 1
    gcj = (
        await client.get(
            "/api/v1/grids/export", params={"area_id": demo["360602001001"], "crs": "gcj02"}
        )
    ).json()
    back = await client.post(
        "/api/v1/grids/import", params={"mode": "upsert", "crs": "gcj02"}, json=gcj
    )
    assert back.json()["unchanged"] >= n - 1, back.text


async def test_import_shape_errors(client: httpx.AsyncClient) -> None:
    problem(
        await client.post("/api/v1/grids/import", json={"type": "Feature"}), 422, "validation_error"
    )
    problem(await client.post("/api/v1/grids/import", json=[1, 2]), 422, "validation_error")
    problem(
        await client.post(
            "/api/v1/grids/import", json={"type": "FeatureCollection", "features": 3}
        ),
        422,
        "validation_error",
    )


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def test_cli_check_coverage(tmp_path: Path) -> None:
    good = fc(feature("C1", square(LON, LAT, 0.01)), feature("C2", square(LON + 0.01, LAT, 0.01)))
    (tmp_path / "good.geojson").write_text(json.dumps(good))
    r = _cli("check-coverage", str(tmp_path / "good.geojson"))
    assert r.returncode == 0, r.stdout + r.stderr
    bad = fc(feature("C1", square(LON, LAT, 0.01)), feature("C2", square(LON + 0.005, LAT, 0.01)))
    (tmp_path / "bad.geojson").write_text(json.dumps(bad))
    r = _cli(
        "check-coverage", str(tmp_path / "bad.geojson"), "--report", str(tmp_path / "r.geojson")
    )
    assert r.returncode == 1 and "1 overlaps" in r.stdout
    report = json.loads((tmp_path / "r.geojson").read_text())
    assert report["features"][0]["properties"]["kind"] == "overlap"


async def test_cli_import_grids(tmp_path: Path, engine) -> None:
    """The offline import commits for real: it gets its own community and cleans up after."""
    async with engine.begin() as c:
        district = (
            await c.execute(text("SELECT id FROM areas WHERE code = '360602000000'"))
        ).scalar()
        await c.execute(
            text(
                "INSERT INTO areas (level, code, name, parent_id, boundary) VALUES "
                "('community', '360602902001', 'CLI社区', :d, "
                "ST_Multi(ST_MakeEnvelope(117.6, 28.6, 117.62, 28.62, 4326)))"
            ),
            {"d": district},
        )
    try:
        path = tmp_path / "grids.geojson"
        path.write_text(
            json.dumps(
                fc(
                    feature("CLI1", square(117.6, 28.6, 0.01), community="360602902001"),
                    feature("CLI2", square(117.61, 28.6, 0.01), community="360602902001"),
                )
            )
        )
        r = await asyncio.to_thread(_cli, "import-grids", str(path))
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["created"] == 2
        r = await asyncio.to_thread(_cli, "import-grids", str(path))
        assert r.returncode == 1 and "code_exists" in r.stdout
        r = await asyncio.to_thread(_cli, "export-grids", "--area", "360602902001")
        assert r.returncode == 0 and len(json.loads(r.stdout)["features"]) == 2
    finally:
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM grids WHERE code IN ('CLI1', 'CLI2')"))
            await c.execute(text("DELETE FROM areas WHERE code = '360602902001'"))

"""Issue 22, the console's map in headless Chromium: the first view fits the places of the
signed-in user's posts (a street office sees its street, not the province); an offline base map
(an MBTiles file served by the app) is drawn under the layers; communities and grids carry their
names; the header stays on one line at 1366 px; an error shows the request id an operator
quotes. Nothing is fetched from anywhere but the app, and the page's CSP holds."""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import mercantile
import pytest
from PIL import Image
from sqlalchemy import text

from tests.e2e.test_console_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RENDERED_GRIDS,
    ROOT,
)
from tests.reliability.live import Server

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found (make test installs it)"
)

COLOUR = (40, 90, 60)


def _mbtiles(path: Path, bbox: tuple[float, float, float, float]) -> int:
    """A raster MBTiles of one colour over `bbox`, zooms 8-15 (rows in TMS order)."""
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), COLOUR).save(buf, "PNG")
    png = buf.getvalue()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name text, value text)")
    db.execute(
        "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
        "tile_data blob)"
    )
    meta = {
        "name": "test",
        "format": "png",
        "minzoom": "8",
        "maxzoom": "15",
        "bounds": ",".join(map(str, bbox)),
        "attribution": "测试底图",
    }
    db.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    n = 0
    for t in mercantile.tiles(*bbox, zooms=range(8, 16)):
        db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (t.z, t.x, (1 << t.z) - 1 - t.y, png))
        n += 1
    db.commit()
    db.close()
    return n


async def _street() -> tuple[tuple[float, ...], tuple[float, ...], list[str]]:
    """The street user's street: its bbox, the district's, its communities' names."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.config import async_url

    engine = create_async_engine(async_url(os.environ["TEST_DATABASE_URL"]))
    async with engine.connect() as c:
        street = (
            await c.execute(
                text(
                    "SELECT a.id, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM posts p "
                    "JOIN users u ON u.id = p.user_id JOIN areas a ON a.id = p.area_id, "
                    "LATERAL (SELECT a.boundary::box2d b) x WHERE u.username = 'street'"
                )
            )
        ).one()
        district = (
            await c.execute(
                text(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                    "ST_Extent(boundary) e FROM areas WHERE level = 'community') x"
                )
            )
        ).one()
        names = (
            (
                await c.execute(
                    text("SELECT name FROM areas WHERE parent_id = :s AND level = 'community'"),
                    {"s": street[0]},
                )
            )
            .scalars()
            .all()
        )
    return tuple(street[1:]), tuple(district), list(names)


@pytest.fixture(scope="module")
def basemap_server(engine, tmp_path_factory) -> Iterator[tuple[str, Path]]:  # type: ignore[no-untyped-def]
    import asyncio

    if not (ROOT / "console" / "dist" / "index.html").is_file():
        pytest.fail("the console is not built: run `make console` (make test does)")
    _, district, _ = asyncio.run(_street())
    tmp = tmp_path_factory.mktemp("basemap")
    mb = tmp / "base.mbtiles"
    _mbtiles(mb, district)  # type: ignore[arg-type]
    server = Server(
        os.environ["TEST_DATABASE_URL"],
        {
            "ENV": "test",
            "WANGGE_SCHEDULER_ENABLED": "false",
            "WANGGE_MEDIA_DIR": str(tmp / "media"),
            "WANGGE_CONSOLE_BASE_MAP_FILE": str(mb),
        },
        log=tmp / "server.log",
    )
    server.start()
    try:
        yield server.base, mb
    finally:
        server.stop()


def test_the_offline_base_map_is_served_from_the_file(basemap_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = basemap_server
    cfg = httpx.get(f"{base}/console/config.json").json()["base_map"]
    assert cfg["tiles"] == [f"{base}/console/basemap/{{z}}/{{x}}/{{y}}"]
    assert cfg["attribution"] == "测试底图" and cfg["min_zoom"] == 8 and cfg["max_zoom"] == 15
    lon, lat = (cfg["bounds"][0] + cfg["bounds"][2]) / 2, (cfg["bounds"][1] + cfg["bounds"][3]) / 2
    t = mercantile.tile(lon, lat, 12)
    r = httpx.get(f"{base}/console/basemap/12/{t.x}/{t.y}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).getpixel((5, 5)) == COLOUR
    assert httpx.get(f"{base}/console/basemap/3/0/0").status_code == 404
    bad = httpx.get(f"{base}/console/basemap/12/99999999/0")
    assert bad.status_code in (404, 422) and bad.headers["content-type"].startswith(
        "application/problem+json"
    )


async def test_the_console_map_fits_the_users_places_with_names_and_a_base_map(
    basemap_server, engine
) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright, expect

    base, _ = basemap_server
    street, district, communities = await _street()
    errors: list[str] = []
    basemap_ok: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    r.url.startswith((base + "/", "data:", "blob:"))
                    or errors.append(f"off-origin request: {r.url}")
                ),
            )
            page.on(
                "console", lambda m: "Content Security Policy" in m.text and errors.append(m.text)
            )
            page.on(
                "response",
                lambda r: (
                    "/console/basemap/" in r.url and r.status == 200 and basemap_ok.append(r.url)
                ),
            )
            await page.goto(f"{base}/console")
            # an error names the request id (a wrong password: the answer's X-Request-ID)
            await page.fill("input[name=username]", "street")
            await page.fill("input[name=password]", "wrong-password-1")
            async with page.expect_response("**/api/v1/auth/token") as refused:
                await page.click("#login-form button[type=submit]")
            rid = (await refused.value).headers["x-request-id"]
            await expect(page.locator("#login-error")).to_contain_text(f"请求编号 {rid}")

            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            await page.wait_for_function(RENDERED_GRIDS, timeout=30_000)
            # the first view is the street, not the whole district
            view = await page.evaluate("() => window.wangge.map.getBounds().toArray()")
            (w, s), (e, n) = view
            cx, cy = (w + e) / 2, (s + n) / 2
            assert street[0] <= cx <= street[2] and street[1] <= cy <= street[3], (view, street)
            assert (e - w) < 0.9 * (district[2] - district[0]) or (n - s) < 0.9 * (
                district[3] - district[1]
            ), (view, district)
            # the base map is drawn from the app's file
            await page.wait_for_function(
                "() => window.wangge.map.getLayer('basemap') !== undefined"
            )
            assert basemap_ok, "no base map tile was loaded"
            await expect(page.locator(".maplibregl-ctrl-attrib")).to_contain_text("测试底图")
            # community names as labels
            labels = page.locator(".map-label:not(.grid)")
            await expect(labels.first).to_be_visible(timeout=15_000)
            shown = set(await labels.all_inner_texts())
            assert shown & set(communities), (shown, communities)
            # the header is one line at 1366 px
            one_line = await page.evaluate(
                """() => {
                  const h = document.querySelector('#console > header');
                  const tops = [...h.querySelectorAll('.stats .figure')].map((f) => f.offsetTop);
                  return {tops: new Set(tops).size, fits: h.scrollWidth <= h.clientWidth + 1,
                          height: h.offsetHeight};
                }"""
            )
            assert one_line["tops"] <= 1 and one_line["fits"] and one_line["height"] < 80, one_line
            await page.screenshot(path=ARTIFACTS / "console-map-street.png")
            # zoomed in: grid names
            await page.evaluate(
                "([x, y]) => window.wangge.map.jumpTo({center: [x, y], zoom: 15.5})", [cx, cy]
            )
            await expect(page.locator(".map-label.grid").first).to_be_visible(timeout=15_000)
            await page.screenshot(path=ARTIFACTS / "console-map-grids.png")
        finally:
            await browser.close()
    assert errors == [], errors

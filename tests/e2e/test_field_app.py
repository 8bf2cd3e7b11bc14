"""End to end: 网格通, the grid worker's field app (/app), in headless Chromium (Debian's, driven by
Playwright) on a phone (360 px, touch, geolocation), against the app served over real HTTP by
uvicorn on the test database (real commits).

The worker signs in and sees the own grids on the map with the position and the queue's counts.
The device stands 25 m inside a grid, at a point whose GCJ-02 shift lies in another grid: a wrong
conversion would pick the wrong grid. With the network cut, three cases with photos (one photo
4000 px wide, resized on the device) are reported; the app is closed and reopened offline (the
service worker serves it; the outbox is in IndexedDB) and its access token has gone stale; the
network comes back flaky: the first request of every case and photo reaches the server, commits,
and its response is dropped. Exactly three cases and four photos arrive, once each, in the right
grid; the timeline shows them; a second restore sends nothing. A category withdrawn meanwhile gives
a 422 that the outbox shows with its field, editable and sent once fixed. The worker verifies a
case on site with a photo. The manifest installs. Screenshots of each screen are kept in
tests/e2e/artifacts/field-*.png; every screen is checked for overflow at 360 px and for targets
smaller than a thumb.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from geo.crs import gcj02_to_wgs84, wgs84_to_gcj02
from tests.e2e.fieldserver import field_server, guard

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TAG = "E2E-FIELD"
PASSWORD = os.environ.get("WANGGE_DEMO_PASSWORD", "Wangge#2026")
GRID = "360602001001001"  # the worker's first grid (立新社区)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not found: `make test` installs Debian's chromium (apt-get) for this test",
)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """uvicorn serving the app (and the built field app) on a free port, on the test database."""
    with field_server(tmp_path_factory.mktemp("media"), "field-server.log") as base:
        yield base


@pytest_asyncio.fixture
async def cleanup(engine) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    state: dict[str, Any] = {"withdrawn": None}
    yield state
    async with engine.begin() as c:
        if state["withdrawn"]:
            await c.execute(
                text("UPDATE categories SET active = true WHERE code = :c"),
                {"c": state["withdrawn"]},
            )
        await c.execute(text("DELETE FROM cases WHERE title LIKE :t"), {"t": TAG + "%"})


def _big_jpeg(colour: tuple[int, int, int]) -> bytes:
    """A phone-sized photo (4000 × 3000): the app must resize it before it is saved."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (4000, 3000), colour)
    ImageDraw.Draw(img).rectangle((500, 500, 3500, 2500), outline=(255, 255, 255), width=40)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=70)
    return out.getvalue()


def _small_jpeg(colour: tuple[int, int, int]) -> bytes:
    from tests.helpers import jpeg

    return jpeg(size=(800, 600), colour=colour)


async def _grid_of(c, lon: float, lat: float) -> int | None:  # type: ignore[no-untyped-def]
    return (
        await c.execute(
            text(
                "SELECT b.grid_id FROM grid_boundaries b WHERE b.valid_to IS NULL AND "
                "ST_Contains(b.boundary, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) LIMIT 1"
            ),
            {"x": lon, "y": lat},
        )
    ).scalar()


async def _edge_point(engine) -> tuple[float, float, int, int | None]:  # type: ignore[no-untyped-def]
    """A WGS84 point 25 m inside GRID whose GCJ-02 shift (either way) lands outside it."""
    async with engine.connect() as c:
        grid_id = (
            await c.execute(text("SELECT id FROM grids WHERE code = :g"), {"g": GRID})
        ).scalar_one()
        pts = (
            await c.execute(
                text(
                    "SELECT ST_X(p.geom), ST_Y(p.geom) FROM grid_boundaries b, LATERAL ST_DumpPoints("
                    "ST_Segmentize(ST_Buffer(b.boundary::geography, -25)::geometry, 0.0002)) p "
                    "WHERE b.grid_id = :id AND b.valid_to IS NULL"
                ),
                {"id": grid_id},
            )
        ).all()
        fallback = None
        for lon, lat in pts:
            if await _grid_of(c, lon, lat) != grid_id:
                continue
            wrong_a = await _grid_of(c, *wgs84_to_gcj02(lon, lat))
            wrong_b = await _grid_of(c, *gcj02_to_wgs84(lon, lat))
            if wrong_a != grid_id and wrong_b != grid_id and wrong_a is not None:
                return lon, lat, grid_id, wrong_a
            if wrong_a != grid_id and fallback is None:
                fallback = (lon, lat, grid_id, wrong_a)
    assert fallback is not None, "no point of the grid has its GCJ-02 shift outside it"
    return fallback


# Every screen: nothing wider than the phone, every visible control at least thumb-sized.
LAYOUT = """() => {
  const small = [];
  for (const el of document.querySelectorAll('button, a[href], input, textarea, select, label.file')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || el.closest('[hidden]')) continue;
    if (el.type === 'radio' || el.type === 'file' || el.classList.contains('thumb')) continue;
    if (r.height < 44) small.push(`${el.tagName}:${(el.textContent || el.name || '').trim().slice(0, 20)}:${Math.round(r.height)}`);
  }
  return {width: document.documentElement.scrollWidth, small};
}"""

OUTBOX_DONE = """(n) => {
  const t = document.querySelector('#outbox-summary');
  return t && t.textContent === `等待发送 0 · 发送失败 0 · 已发送 ${n}`;
}"""


async def test_field_app_offline_first(server: str, engine, cleanup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright, expect

    lon, lat, grid_id, wrong_grid = await _edge_point(engine)
    async with engine.connect() as c:
        cats = [
            r[0]
            for r in await c.execute(
                text("SELECT code FROM categories WHERE active ORDER BY code LIMIT 4")
            )
        ]
        grid_name = (
            await c.execute(text("SELECT name FROM grids WHERE id = :id"), {"id": grid_id})
        ).scalar_one()

    errors: list[str] = []
    posts: list[str] = []
    async with async_playwright() as pw:
        # A persistent profile (not incognito: Chromium installs no app from one), kept in tmp.
        ctx = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=["--no-sandbox"],
            headless=True,
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            geolocation={"longitude": lon, "latitude": lat, "accuracy": 12},
            permissions=["geolocation"],
        )
        try:
            watch = guard(ctx, server, errors, posts)

            async def shot(page: Any, name: str) -> None:
                layout = await page.evaluate(LAYOUT)
                assert layout["width"] <= 360, (name, layout)
                assert not layout["small"], (name, layout["small"])
                # The whole page; the bars fixed to the screen are laid at its ends for the shot.
                fixed = "(v) => { for (const s of ['#tabbar', '#toast']) document.querySelector(s).style.position = v; }"
                await page.evaluate(fixed, "static")
                await page.screenshot(path=ARTIFACTS / f"field-{name}.png", full_page=True)
                await page.evaluate(fixed, "")

            # 1. Sign in.
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            watch(page)
            await page.goto(f"{server}/app")
            await expect(page.locator("#login-form")).to_be_visible()
            await shot(page, "1-login")
            await page.fill("input[name=username]", "worker")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_function("() => window.wangge && window.wangge.ready === true")
            await expect(page.locator("#who")).to_have_text("立新社区网格员")
            # The service worker holds the app shell.
            await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            await page.wait_for_function("() => navigator.serviceWorker.controller !== null")

            # 2. Home: the own grids on the map (drawn from the grids' vector tiles too), the
            # position in its grid, the queue's counts.
            await expect(page.locator("#my-grids li")).to_have_count(2)
            await page.wait_for_function(
                "(id) => window.wangge.maps.home.rendered.has(id)", arg=grid_id, timeout=20_000
            )
            await expect(page.locator("#home-pos")).to_contain_text(f"当前位置：{grid_name}")
            for key in ("verify", "evaluate", "mine", "waiting", "failed"):
                await expect(page.locator(f'[data-count="{key}"] b')).to_have_text(
                    re.compile(r"^\d+$")
                )
            await shot(page, "2-home")

            # 3. The manifest installs (Chromium's own installability check).
            cdp = await ctx.new_cdp_session(page)
            inst = await cdp.send("Page.getInstallabilityErrors")
            assert inst["installabilityErrors"] == [], inst

            # 4. Offline: three cases with photos (4 in all), the third placed by hand on the map.
            await ctx.set_offline(True)
            assert (
                await page.evaluate("fetch('/healthz').then(() => 'online', () => 'offline')")
                == "offline"
            )
            await expect(page.locator("#net")).to_have_text("离线")
            photos = [
                [_big_jpeg((200, 60, 40)), _small_jpeg((40, 90, 200))],
                [_small_jpeg((90, 160, 60))],
                [_small_jpeg((220, 200, 30))],
            ]
            for i in range(3):
                await page.click('[data-nav="report"]')
                await expect(page.locator("#pick-info")).to_contain_text(f"所在网格：{grid_name}")
                await page.fill("#cat-search", cats[i])
                await page.click(f'#cat-list button[data-code="{cats[i]}"]')
                await expect(page.locator("#cat-chosen")).to_contain_text("已选")
                await page.fill("input[name=title]", f"{TAG} 第{i + 1}件 {uuid.uuid4().hex[:4]}")
                await page.fill("textarea[name=description]", "离线上报：路面破损")
                await page.set_input_files(
                    "#photo-input",
                    files=[
                        {"name": f"p{k}.jpg", "mimeType": "image/jpeg", "buffer": b}
                        for k, b in enumerate(photos[i])
                    ],
                )
                await expect(page.locator("#photo-list .thumb")).to_have_count(len(photos[i]))
                if i == 2:
                    box = await page.locator("#pick-map").bounding_box()
                    assert box is not None
                    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                    await page.mouse.move(cx, cy)
                    await page.mouse.down()
                    await page.mouse.move(cx - 30, cy - 20, steps=5)
                    await page.mouse.up()
                    await expect(page.locator("#pick-info")).to_contain_text("已手动调整")
                if i == 0:
                    await shot(page, "3-report")
                await page.click("#report-submit")
                await expect(page.locator('[data-screen="outbox"]')).to_be_visible()
            await expect(page.locator("#outbox-list li[data-state=waiting]")).to_have_count(3)
            await expect(page.locator("#outbox-summary")).to_have_text(
                "等待发送 3 · 发送失败 0 · 已发送 0"
            )
            await shot(page, "4-outbox-offline")
            entries = await page.evaluate("window.wangge.outbox.entries()")
            assert [len(e["photos"]) for e in entries] == [2, 1, 1]
            assert all(e["body"]["location"]["crs"] == "wgs84" for e in entries)
            assert entries[0]["body"]["location"]["lon"] == pytest.approx(lon, abs=1e-6)
            moved = entries[2]["body"]["location"]
            assert (moved["lon"], moved["lat"]) != (
                entries[0]["body"]["location"]["lon"],
                entries[0]["body"]["location"]["lat"],
            )

            # 5. Closed and reopened with no network: the service worker serves the app, the outbox
            # is still there. The access token went stale meanwhile (a forged one stands in for it).
            await page.evaluate(
                """() => new Promise((ok, fail) => {
                  const r = indexedDB.open('wangge-field');
                  r.onsuccess = () => {
                    const t = r.result.transaction('kv', 'readwrite');
                    const s = t.objectStore('kv');
                    const g = s.get('auth');
                    g.onsuccess = () => s.put({...g.result, access: 'stale.token.x'}, 'auth');
                    t.oncomplete = () => { r.result.close(); ok(); };
                    t.onerror = () => fail(t.error);
                  };
                })"""
            )
            await page.close()
            page = await ctx.new_page()
            watch(page)
            res = await page.goto(f"{server}/app")
            assert res is not None and res.from_service_worker
            await page.wait_for_function("() => window.wangge && window.wangge.ready === true")
            await expect(page.locator("#net")).to_have_text("离线")
            await page.click('[data-nav="outbox"]')
            await expect(page.locator("#outbox-summary")).to_have_text(
                "等待发送 3 · 发送失败 0 · 已发送 0"
            )
            await expect(page.locator("#outbox-list li[data-state=waiting]").first).to_contain_text(
                "联网后自动发送"
            )
            await shot(page, "5-offline-start")

            # 6. The network back, flaky: the first request of each case and photo reaches the
            # server (which commits) and then its response is dropped.
            dropped: dict[str, int] = {}

            async def flaky(route: Any, request: Any) -> None:
                if request.method != "POST":
                    await route.continue_()
                    return
                body = request.post_data_buffer or b""
                boundary = re.search(r"boundary=(\S+)", request.headers.get("content-type", ""))
                if boundary:
                    body = body.replace(boundary.group(1).encode(), b"")
                key = request.headers.get("idempotency-key") or (
                    request.url + hashlib.sha256(body).hexdigest()
                )
                if key in dropped:
                    await route.continue_()
                    return
                response = await route.fetch()
                if response.status >= 300:  # e.g. the stale token's 401: nothing committed
                    await route.fulfill(response=response)
                    return
                dropped[key] = response.status
                await route.abort("connectionreset")

            intake = re.compile(r".*/api/v1/cases(/\d+/attachments)?$")
            await ctx.route(intake, flaky)
            await ctx.set_offline(False)
            try:
                await page.wait_for_function(OUTBOX_DONE, arg=3, timeout=60_000)
            except Exception:
                await page.screenshot(path=ARTIFACTS / "field-debug.png")
                print(
                    "the outbox when the wait ran out:",
                    dropped,
                    await page.evaluate(
                        "window.wangge.outbox.entries().then(es => es.map(e => [e.state, e.caseId, e.attempts, e.error, e.photos]))"
                    ),
                )
                raise
            assert sorted(dropped.values()) == [201] * 7, dropped  # 3 cases + 4 photos committed
            await shot(page, "6-outbox-sent")
            assert await page.evaluate("window.wangge.api.stats.refreshed") >= 1
            await expect(page.locator("#who")).to_have_text("立新社区网格员")

            async with engine.connect() as c:
                rows = (
                    await c.execute(
                        text(
                            "SELECT c.id, c.grid_id, c.input_crs, ST_X(c.location) x, ST_Y(c.location) y, "
                            "(SELECT count(*) FROM attachments a WHERE a.case_id = c.id) n, "
                            "(SELECT max(greatest(a.width, a.height)) FROM attachments a WHERE a.case_id = c.id) side "
                            "FROM cases c WHERE c.title LIKE :t ORDER BY c.id"
                        ),
                        {"t": TAG + "%"},
                    )
                ).all()
                expected = [await _grid_of(c, r.x, r.y) for r in rows]
            assert len(rows) == 3, rows
            assert sorted(r.n for r in rows) == [1, 1, 2]
            assert max(r.side for r in rows) <= 1600  # the 4000 px photo was resized on the device
            # Two at the device's position: in its grid (a wrong GCJ-02 conversion lands in
            # another); the third where the worker moved the map; each in its point's grid.
            at_device = [
                r
                for r in rows
                if r.x == pytest.approx(lon, abs=1e-6) and r.y == pytest.approx(lat, abs=1e-6)
            ]
            assert len(at_device) == 2 and {r.grid_id for r in at_device} == {grid_id} != {
                wrong_grid
            }
            assert [r.grid_id for r in rows] == expected
            assert {r.input_crs for r in rows} == {"wgs84"}

            # 7. The timeline shows them (the report with its photos).
            first = next(r.id for r in rows if r.n == 2)
            await (
                page.locator("#outbox-list li[data-state=done]", has_text="照片 2/2")
                .locator('[data-do="open"]')
                .click()
            )
            await expect(page.locator("#timeline li[data-action=reported]")).to_contain_text(
                "照片 2 张"
            )
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#timeline img')].filter((i) => i.naturalWidth > 0).length === 2"
            )
            assert page.url.endswith(f"#case/{first}")
            await shot(page, "7-case")

            # 8. A second restore sends nothing more.
            before = len(posts)
            await ctx.set_offline(True)
            await page.wait_for_timeout(500)
            await ctx.set_offline(False)
            await page.wait_for_timeout(4000)
            assert [u for u in posts[before:] if intake.match(u)] == []
            await ctx.unroute(intake)
            async with engine.connect() as c:
                n = (
                    await c.execute(
                        text(
                            "SELECT count(*), (SELECT count(*) FROM attachments a JOIN cases x ON x.id = a.case_id "
                            "WHERE x.title LIKE :t) FROM cases WHERE title LIKE :t"
                        ),
                        {"t": TAG + "%"},
                    )
                ).one()
            assert tuple(n) == (3, 4)

            # 9. A 422: the category was withdrawn after the app cached the catalogue. The outbox
            # shows it with its field; edited, it is sent.
            async with engine.begin() as c:
                await c.execute(
                    text("UPDATE categories SET active = false WHERE code = :c"), {"c": cats[3]}
                )
            cleanup["withdrawn"] = cats[3]
            await page.click('[data-nav="report"]')
            await page.fill("#cat-search", cats[3])
            await page.click(f'#cat-list button[data-code="{cats[3]}"]')
            await page.fill("input[name=title]", f"{TAG} 已停用类别")
            await page.click("#report-submit")
            failed = page.locator("#outbox-list li[data-state=failed]")
            await expect(failed).to_have_count(1, timeout=15_000)
            await expect(failed.locator("[data-error-field=category]")).to_contain_text(
                "【事项类别】"
            )
            await expect(failed).to_contain_text("已停用")
            await shot(page, "8-outbox-422")
            await failed.locator('[data-do="edit"]').click()
            await expect(
                page.locator('#report-form .field-error[data-field="category"]')
            ).to_contain_text("已停用")
            await shot(page, "9-edit-422")
            await page.fill("#cat-search", cats[0])
            await page.click(f'#cat-list button[data-code="{cats[0]}"]')
            await page.click("#report-submit")
            await page.wait_for_function(OUTBOX_DONE, arg=4, timeout=30_000)
            async with engine.connect() as c:
                got = (
                    (
                        await c.execute(
                            text("SELECT category_code FROM cases WHERE title = :t"),
                            {"t": f"{TAG} 已停用类别"},
                        )
                    )
                    .scalars()
                    .all()
                )
            assert got == [cats[0]]

            # 10. Verify on site: a case the worker handled on the spot waits for verification.
            async with httpx.AsyncClient(base_url=server) as api:
                # Signed in here (not the suite's session-wide tokens, which a long run idles out).
                r = await api.post(
                    "/api/v1/auth/token", data={"username": "worker", "password": PASSWORD}
                )
                assert r.status_code == 200, r.text
                auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
                r = await api.post(
                    "/api/v1/cases",
                    json={
                        "category": cats[0],
                        "title": f"{TAG} 待核查",
                        "location": {"lon": lon, "lat": lat},
                    },
                    headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
                )
                assert r.status_code == 201, r.text
                vid = r.json()["id"]
                r = await api.post(
                    f"/api/v1/cases/{vid}/actions/on_spot",
                    json={"note": "已当场处理"},
                    headers={**auth, "If-Match": '"1"'},
                )
                assert r.status_code == 200, r.text
            await page.evaluate("window.wangge.refresh()")
            await page.click('[data-nav="tasks"]')
            await page.click('#task-tabs [data-tab="verify"]')
            await page.click(f'#task-list [data-case="{vid}"]')
            await expect(page.locator("#verify-form")).to_be_visible()
            await page.set_input_files(
                "#verify-photos",
                files=[
                    {
                        "name": "v.jpg",
                        "mimeType": "image/jpeg",
                        "buffer": _small_jpeg((10, 140, 140)),
                    }
                ],
            )
            await expect(page.locator("#verify-thumbs .thumb")).to_have_count(1)
            await page.fill("#verify-form textarea[name=note]", "现场核查：已处理完毕")
            await shot(page, "10-verify")
            await page.click("#verify-form button[type=submit]")
            await page.wait_for_function(OUTBOX_DONE, arg=5, timeout=30_000)
            async with engine.connect() as c:
                status, on_verify = (
                    await c.execute(
                        text(
                            "SELECT c.status, (SELECT count(*) FROM attachments a JOIN case_events e "
                            "ON e.id = a.event_id WHERE a.case_id = c.id AND e.action = 'verify') "
                            "FROM cases c WHERE c.id = :id"
                        ),
                        {"id": vid},
                    )
                ).one()
            assert (status, on_verify) == ("verified", 1)
            # ... and the resident is called back (回访): the case closes.
            await (
                page.locator("#outbox-list li[data-state=done]", has_text="核查")
                .locator('[data-do="open"]')
                .click()
            )
            await expect(page.locator("#evaluate-form")).to_be_visible()
            await page.check('#evaluate-form input[value="basically_satisfied"]')
            await page.fill("#evaluate-form textarea[name=note]", "群众基本满意")
            await shot(page, "11-callback")
            await page.click("#evaluate-form button[type=submit]")
            await page.wait_for_function(OUTBOX_DONE, arg=6, timeout=30_000)
            async with engine.connect() as c:
                closed = (
                    await c.execute(
                        text("SELECT status, satisfaction FROM cases WHERE id = :id"), {"id": vid}
                    )
                ).one()
            assert tuple(closed) == ("closed", "basically_satisfied")
            await page.click('[data-nav="home"]')
            await expect(page.locator('[data-count="mine"] b')).to_have_text(re.compile(r"^\d+$"))
            await shot(page, "12-home-after")
            await page.click('[data-nav="tasks"]')
            await shot(page, "13-tasks")
        finally:
            await ctx.close()
    assert not errors, errors

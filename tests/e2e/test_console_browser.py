"""End to end: the console (/console) in headless Chromium (Debian's, driven by Playwright) against
the app served over real HTTP by uvicorn on the test database (real commits, like test_live).

The centre logs in and sees the grids rendered on the map (MapLibre's rendered features, not the
DOM); a grid worker reports a case through the API while the page is open; it arrives through the
live stream in the centre's queue, on the map, in the hot spots and the period's figures; the
centre dispatches it in the case panel and sees its status change; the department asks for more
time and the centre approves it in the panel. Screenshots of each screen are kept in
tests/e2e/artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from tests.factories import report_body
from tests.helpers import jpeg

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TAG = "E2E-CONSOLE"
PASSWORD = os.environ.get("WANGGE_DEMO_PASSWORD", "Wangge#2026")
# WebGL without a GPU: ANGLE on SwiftShader (software rendering).
CHROMIUM_ARGS = [
    "--use-angle=swiftshader",
    "--use-gl=angle",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--no-sandbox",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not found: `make test` installs Debian's chromium (apt-get) for this test",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """uvicorn serving the app (and the built console) on a free port, on the test database."""
    if not (ROOT / "console" / "dist" / "index.html").is_file():
        pytest.fail("the console is not built: run `make console` (make test does)")
    port = _free_port()
    env = {
        **os.environ,
        "ENV": "test",
        "WANGGE_SCHEDULER_ENABLED": "false",
        "WANGGE_MEDIA_DIR": str(tmp_path_factory.mktemp("media")),
    }
    env["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "server.log", "w")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "app.main:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start (exit code {proc.poll()})")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest_asyncio.fixture
async def cleanup(engine) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    yield
    async with engine.begin() as c:
        await c.execute(text("DELETE FROM cases WHERE title LIKE :t"), {"t": TAG + "%"})


async def _report_body(engine, title: str) -> dict:  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        return await report_body(c, title, description="路面破损，影响通行")


RENDERED_GRIDS = """() => {
  const m = window.wangge && window.wangge.map;
  // loaded(): the style and every tile of the view are in, so the count is the whole view's.
  if (!m || !m.getLayer('grids-fill') || !m.loaded()) return 0;
  const fs = m.queryRenderedFeatures({layers: ['grids-fill']});
  return new Set(fs.map((f) => f.properties.code ?? f.properties.id ?? f.id)).size;
}"""

HOT_GRID = """(grid) => {
  const m = window.wangge.map;
  return m.queryRenderedFeatures({layers: ['hotspots-fill']})
    .some((f) => (f.id ?? f.properties.id) === grid && f.properties.cases >= 1);
}"""

GOT_EVENT = (
    """([type, id]) => window.wangge.events.some((e) => e.type === type && e.case_id === id)"""
)

RENDERED_CASE = """(id) => {
  const m = window.wangge.map;
  return m.queryRenderedFeatures({layers: ['cases-dot']}).some((f) => f.properties.id === id);
}"""


async def test_console_end_to_end(server: str, engine, tokens, cleanup) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            page.on("pageerror", lambda e: errors.append(str(e)))
            # Nothing is fetched from anywhere but the app (no CDN, no remote glyphs or tiles).
            page.on(
                "request",
                lambda r: (
                    r.url.startswith((server + "/", "data:", "blob:"))
                    or errors.append(f"off-origin request: {r.url}")
                ),
            )
            # The page's Content-Security-Policy holds: nothing it does is refused.
            page.on(
                "console",
                lambda m: "Content Security Policy" in m.text and errors.append(m.text),
            )

            # 1. Log in as the centre.
            await page.goto(f"{server}/console")
            await expect(page.locator("#login-form")).to_be_visible()
            await page.screenshot(path=ARTIFACTS / "1-login.png")
            await page.fill("input[name=username]", "centre")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            await expect(page.locator("#who")).to_contain_text("区综治中心")
            await expect(page.locator('#stats [data-figure="received"] small')).to_have_text(
                "受理数"
            )

            # 2. The map has rendered the grids (MapLibre's rendered features).
            handle = await page.wait_for_function(RENDERED_GRIDS, timeout=30_000)
            rendered = await handle.json_value()
            async with engine.connect() as c:
                live_grids = (
                    await c.execute(
                        text(
                            "SELECT count(*) FROM grids WHERE deleted_at IS NULL "
                            "AND code LIKE '360602%'"  # the demo district, 月湖区
                        )
                    )
                ).scalar_one()
            # The whole district is in view: nearly every one of its grids is drawn (a few may be clipped at
            # the edges of the view).
            assert rendered >= 0.9 * live_grids, (rendered, live_grids)
            await expect(page.locator("#live")).to_have_attribute("data-state", "live")
            # A click on a grid opens its card (from the tile's properties).
            box = await page.locator("#map").bounding_box()
            assert box is not None
            await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            card = page.locator(".grid-card")
            await expect(card).to_contain_text("网格")
            await expect(card).to_contain_text("户数")
            await page.screenshot(path=ARTIFACTS / "2-map.png")
            await card.locator(".maplibregl-popup-close-button").click()
            await expect(card).to_have_count(0)
            reported = page.locator('#stats[data-source=server] [data-figure="received"] b')
            before = int((await reported.inner_text()).lstrip("≥"))

            # 3. A grid worker reports a case through the API while the page is open.
            title = f"{TAG} 路面坑洼 {uuid.uuid4().hex[:6]}"
            async with httpx.AsyncClient(base_url=server) as api:
                r = await api.post(
                    "/api/v1/cases",
                    json=await _report_body(engine, title),
                    headers={
                        "Authorization": f"Bearer {tokens['worker']}",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                )
                assert r.status_code == 201, r.text
                case = r.json()
                loc = case["location"]
                r = await api.post(
                    f"/api/v1/cases/{case['id']}/attachments",
                    files={"files": ("photo.jpg", jpeg(loc["lon"], loc["lat"], size=(320, 240)))},
                    headers={"Authorization": f"Bearer {tokens['worker']}"},
                )
                assert r.status_code == 201, r.text

                # ... it arrives through the stream: in the queue (waiting for dispatch) and on the map.
                item = page.locator(f'#queue li[data-id="{case["id"]}"]')
                await expect(item).to_be_visible(timeout=15_000)
                await expect(item).to_contain_text(title)
                await expect(item).to_have_class(re.compile(r"\bfresh\b"))
                await page.wait_for_function(GOT_EVENT, arg=["case.reported", case["id"]])
                await page.wait_for_function(RENDERED_CASE, arg=case["id"], timeout=15_000)
                # ... the hot-spot choropleth counts it in its grid; the period's figures (the
                # statistics endpoint) count it too.
                await page.wait_for_function(HOT_GRID, arg=case["grid"]["id"], timeout=15_000)
                await expect(reported).to_have_text(str(before + 1))
                # A figure lists the cases behind it (its drill-down link).
                await reported.click()
                await expect(page.locator('[data-tab="drill"]')).to_have_text("明细：受理数")
                await expect(item).to_be_visible()
                await page.click('[data-tab="todo"]')
                await page.screenshot(path=ARTIFACTS / "3-new-case.png")

                # 4. The centre opens it and dispatches it in the case panel.
                await item.click()
                await expect(page.locator("#case h2")).to_have_text(title)
                await expect(page.locator("#case-status")).to_have_text(case["status_label"])
                # The photo is fetched with the token and shown.
                photo = page.locator("#case .photos img")
                await expect(photo).to_have_attribute("src", re.compile(r"^blob:"))
                await page.wait_for_function(
                    "() => document.querySelector('#case .photos img').naturalWidth > 0"
                )
                await page.click('#case [data-action="dispatch"]')
                dispatch = page.locator('#case [data-form="dispatch"]')
                await dispatch.locator("select[name=lead_department_id]").select_option(
                    label="区城市管理局"
                )
                await dispatch.locator("textarea[name=note]").fill("请城管局处置")
                await dispatch.locator("button[type=submit]").click()

                # 5. It changes: the panel shows the new status, the server agrees, and the case
                # leaves the centre's queue (the dispatch event came back through the stream).
                r = await api.get(
                    f"/api/v1/cases/{case['id']}",
                    headers={"Authorization": f"Bearer {tokens['centre']}"},
                )
                for _ in range(50):
                    if r.json()["status"] == "dispatched":
                        break
                    await page.wait_for_timeout(100)
                    r = await api.get(
                        f"/api/v1/cases/{case['id']}",
                        headers={"Authorization": f"Bearer {tokens['centre']}"},
                    )
                after = r.json()
                assert after["status"] == "dispatched", after["status"]
                assert [t["action"] for t in after["timeline"]][-1] == "dispatch"
                assert after["lead_department"]["name"] == "区城市管理局"
                await expect(page.locator("#case-status")).to_have_text(after["status_label"])
                await expect(page.locator("#case .timeline li").last).to_contain_text(
                    after["timeline"][-1]["action_label"]
                )
                await expect(item).to_have_count(0, timeout=15_000)
                await page.wait_for_function(GOT_EVENT, arg=["case.dispatch", case["id"]])
                await page.screenshot(path=ARTIFACTS / "4-dispatched.png")

                # 6. The department signs in and asks for more time (through the API); the request
                # reaches the centre live, who approves it in the panel.
                dept = {"Authorization": f"Bearer {tokens['dept']}"}
                r = await api.post(
                    f"/api/v1/cases/{case['id']}/actions/sign_in",
                    json={},
                    headers={**dept, "If-Match": r.headers["etag"]},
                )
                assert r.status_code == 200, r.text
                r = await api.post(
                    f"/api/v1/cases/{case['id']}/actions/request_extension",
                    json={"amount": 2, "unit": "days", "reason": "需协调施工队"},
                    headers={**dept, "If-Match": r.headers["etag"]},
                )
                assert r.status_code == 200, r.text
                due = r.json()["assignments"][0]["handle_due"]
                await expect(item.locator(".badge")).to_have_text("延期申请", timeout=15_000)
                await page.wait_for_function(GOT_EVENT, arg=["case.request_extension", case["id"]])
                await expect(page.locator("#extension-request")).to_contain_text("需协调施工队")
                await page.screenshot(path=ARTIFACTS / "5-extension-request.png")
                await page.click('#case [data-action="decide_extension"]')
                await page.click('#case [data-form="decide_extension"] button[type=submit]')
                await expect(page.locator("#case .timeline li").last).to_contain_text("审批延期")
                r = await api.get(
                    f"/api/v1/cases/{case['id']}",
                    headers={"Authorization": f"Bearer {tokens['centre']}"},
                )
                lead = r.json()["assignments"][0]
                assert lead["extension"]["state"] == "approved"
                assert lead["handle_due"] > due  # two more working days
                await expect(item).to_have_count(0, timeout=15_000)
                await expect(page.locator("#extension-request")).to_have_count(0)
                # The same screen on a laptop.
                await page.set_viewport_size({"width": 1366, "height": 768})
                await page.wait_for_function("() => window.wangge.map.loaded()")
                await page.screenshot(path=ARTIFACTS / "6-laptop.png")
        finally:
            await browser.close()
    assert errors == [], errors

"""The console's grid ledger (网格台账, console/src/registry.js) in headless Chromium: a grid worker
picks the grid and sees its size with the source (基础信息 once the grid has base data), the
residents as the server masks them, and the grid's dispute with its case number; a click opens
the dispute's case in the case panel (the dispute is a case of the engine). The centre sees the
party masked. Nothing is fetched from anywhere but the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from tests.api.basedata_support import id_number
from tests.e2e.test_console_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, server
from tests.factories import DEMO_GRID

__all__ = ["server"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found (make test installs it)"
)
TAG = "E2E-LEDGER"


@pytest_asyncio.fixture
async def cleanup(engine) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    yield
    async with engine.begin() as c:
        await c.execute(text("DELETE FROM cases WHERE title LIKE :t"), {"t": TAG + "%"})
        await c.execute(text("DELETE FROM houses WHERE room = :r"), {"r": "E2E901"})
        await c.execute(
            text(
                "UPDATE grids SET derived_households = NULL, derived_population = NULL "
                "WHERE code = :g"
            ),
            {"g": DEMO_GRID},
        )


async def _token(c: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await c.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_the_ledger_shows_base_data_and_disputes(server, engine, cleanup) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright, expect

    async with engine.connect() as c:
        grid, building = (
            await c.execute(
                text(
                    "SELECT g.id, min(b.id) FROM grids g JOIN buildings b ON b.grid_id = g.id "
                    "WHERE g.code = :g GROUP BY g.id"
                ),
                {"g": DEMO_GRID},
            )
        ).one()
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        h = await _token(api, "worker")
        house = await api.post(
            f"/api/v1/buildings/{building}/houses",
            json={"unit": "9", "floor": 9, "room": "E2E901"},
            headers=h,
        )
        assert house.status_code == 201, house.text
        hh = await api.post(f"/api/v1/houses/{house.json()['id']}/households", json={}, headers=h)
        person = await api.post(
            f"/api/v1/households/{hh.json()['id']}/residents",
            json={"name": "测试台账", "id_number": id_number(777), "phone": "13700007777"},
            headers=h,
        )
        assert person.status_code == 201, person.text
        d = await api.post(
            f"/api/v1/grids/{grid}/disputes",
            json={
                "title": f"{TAG} 邻里噪音",
                "kind": "neighbour",
                "risk": "medium",
                "parties": [{"resident_id": person.json()["id"]}, {"name": "测试邻居"}],
            },
            headers=h,
        )
        assert d.status_code == 201, d.text
        dispute = d.json()

    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            for user, party in (("worker", "测试台账"), ("centre", "测**")):
                page = await browser.new_page(
                    viewport={"width": 1366, "height": 768}, locale="zh-CN"
                )
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on(
                    "request",
                    lambda r: (
                        r.url.startswith((server + "/", "data:", "blob:"))
                        or errors.append(f"off-origin request: {r.url}")
                    ),
                )
                await page.goto(f"{server}/console")
                await page.fill("input[name=username]", user)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("#login-form button[type=submit]")
                await page.wait_for_selector("body[data-ready=true]", timeout=30_000)
                await page.select_option("#ledger-grid", str(grid))
                ledger = page.locator("#ledger")
                await expect(ledger.locator(f"[data-dispute='{dispute['id']}']")).to_contain_text(
                    party, timeout=15_000
                )
                await expect(ledger.locator("[data-size=households] + dd")).to_have_text(
                    "来自基础信息"
                )
                if user == "worker":
                    await expect(ledger.locator("table.residents")).to_contain_text("137****7777")
                    assert "13700007777" not in await ledger.inner_text()
                    await page.screenshot(path=ARTIFACTS / "console-ledger.png")
                    await ledger.locator(f"[data-dispute='{dispute['id']}']").click()
                    await expect(page.locator("#case")).to_be_visible()
                    await expect(page.locator("#case")).to_contain_text(dispute["case_number"])
                await page.close()
        finally:
            await browser.close()
    assert errors == [], errors

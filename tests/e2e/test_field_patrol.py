"""End to end: the grid worker's day in 网格通 (/app), in headless Chromium (Debian's, driven by
Playwright) on a phone (360 px, touch, geolocation emulated and moved step by step), against the
app served over real HTTP by uvicorn on the test database (real commits).

The worker turns on push messages (the subscription is registered with the server), starts a
patrol online and walks; the network is cut; the walk goes on, two check-ins at fixed points, a
pause and a resume, a visit to a building; the app is closed with the network still cut. The
network comes back while no page is open: the service worker's Background Sync sends the queue
itself, and the patrol's fixes, the check-ins, the pause and the visit arrive exactly once. The app
is reopened: nothing more is sent. The walk ends over a flaky network (the batch and the end reach
the server, which commits, and their responses are dropped): still exactly once. A task given to
the worker is pushed through a local push service (VAPID verified, payload decrypted), delivered
to the service worker as the browser's push service would, shown as a notification; tapping it
opens the task, which the worker accepts (the response dropped once) and reports done.
Screenshots: tests/e2e/artifacts/field-patrol-*.png, each checked for overflow at 360 px and for
targets smaller than a thumb.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from tests.e2e.fieldserver import field_server, guard
from tests.push_endpoint import PushService

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TAG = "E2E-PATROL"
PASSWORD = os.environ.get("WANGGE_DEMO_PASSWORD", "Wangge#2026")
GRID = "360602001001001"  # the worker's first grid (立新社区)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not found: `make test` installs Debian's chromium (apt-get) for this test",
)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """uvicorn serving the app and the built field app on a free port, on the test database; a
    push endpoint on 127.0.0.1 is allowed (the local push service of the test)."""
    with field_server(
        tmp_path_factory.mktemp("media"),
        "field-patrol-server.log",
        WANGGE_WEBHOOK_ALLOW_PRIVATE="true",
    ) as base:
        yield base


async def _token(api: httpx.AsyncClient, who: str) -> dict[str, str]:
    r = await api.post("/api/v1/auth/token", data={"username": who, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _east(lon: float, lat: float, metres: float) -> tuple[float, float]:
    return lon + metres / (111_320 * math.cos(math.radians(lat))), lat


@pytest_asyncio.fixture
async def field(server: str, engine, monkeypatch) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The walk's start inside GRID, two check-in points on it (made by the street), the worker's
    id; afterwards everything the test made is deleted (the suite shares this database)."""
    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)  # the local push service
    async with engine.connect() as c:
        # The longest east-west chord of the grid through a point inside it: the walk goes
        # along it, from 15 m inside its west end.
        grid_id, lon, lat, length = (
            await c.execute(
                text(
                    "WITH g AS (SELECT g.id, b.boundary, ST_PointOnSurface(b.boundary) p FROM grids g "
                    "JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL WHERE g.code = :g), "
                    "chord AS (SELECT g.id, (ST_Dump(ST_Intersection(g.boundary, ST_MakeLine("
                    "ST_SetSRID(ST_MakePoint(ST_XMin(g.boundary) - 0.01, ST_Y(g.p)), 4326), "
                    "ST_SetSRID(ST_MakePoint(ST_XMax(g.boundary) + 0.01, ST_Y(g.p)), 4326))))).geom FROM g) "
                    "SELECT id, ST_XMin(geom), ST_Y(ST_StartPoint(geom)), "
                    "ST_Length(geom::geography) FROM chord WHERE GeometryType(geom) = 'LINESTRING' "
                    "ORDER BY ST_Length(geom::geography) DESC LIMIT 1"
                ),
                {"g": GRID},
            )
        ).one()
        lon, lat = _east(lon, lat, 15)
        step = min(12.0, (length - 30) / 22)
        assert step >= 6, f"the grid's chord is too short for the walk ({length:.0f} m)"
        worker = (
            await c.execute(text("SELECT id FROM users WHERE username = 'worker'"))
        ).scalar_one()
        active = (
            await c.execute(
                text("SELECT count(*) FROM patrols WHERE worker_id = :w AND status <> 'ended'"),
                {"w": worker},
            )
        ).scalar_one()
    assert active == 0, "the worker has a patrol in progress before the test"
    since = datetime.now(UTC)
    made: dict[str, Any] = {
        "grid_id": grid_id,
        "start": (lon, lat),
        "step": step,
        "worker": worker,
        "since": since,
        "checkpoints": [],
        "subscription": None,
    }
    async with httpx.AsyncClient(base_url=server) as api:
        street = await _token(api, "street")
        for name, steps in ((f"{TAG} 消防通道", 8), (f"{TAG} 农贸市场", 15)):
            x, y = _east(lon, lat, step * steps)
            r = await api.post(
                f"/api/v1/grids/{grid_id}/checkpoints",
                json={"name": name, "lon": x, "lat": y, "crs": "wgs84", "radius_m": 40},
                headers=street,
            )
            assert r.status_code == 201, r.text
            made["checkpoints"].append(r.json())
    try:
        yield made
    finally:
        async with engine.begin() as c:
            ids = [cp["id"] for cp in made["checkpoints"]]
            patrols = list(
                (
                    await c.execute(
                        text("SELECT id FROM patrols WHERE worker_id = :w AND created_at >= :t"),
                        {"w": worker, "t": since},
                    )
                ).scalars()
            )
            raised = list(
                (
                    await c.execute(
                        text(
                            "SELECT case_id FROM visits WHERE worker_id = :w AND created_at >= :t "
                            "AND case_id IS NOT NULL"
                        ),
                        {"w": worker, "t": since},
                    )
                ).scalars()
            )
            await c.execute(
                text("DELETE FROM visits WHERE worker_id = :w AND created_at >= :t"),
                {"w": worker, "t": since},
            )
            await c.execute(text("DELETE FROM checkins WHERE checkpoint_id = ANY(:i)"), {"i": ids})
            await c.execute(text("DELETE FROM patrols WHERE id = ANY(:i)"), {"i": patrols})
            await c.execute(text("DELETE FROM checkpoints WHERE id = ANY(:i)"), {"i": ids})
            if raised:
                await c.execute(text("DELETE FROM cases WHERE id = ANY(:i)"), {"i": raised})
            if made["subscription"]:
                await c.execute(
                    text("DELETE FROM push_deliveries WHERE subscription_id = :s"),
                    {"s": made["subscription"]},
                )
                await c.execute(
                    text("DELETE FROM push_subscriptions WHERE id = :s"),
                    {"s": made["subscription"]},
                )
            await c.execute(text("DELETE FROM worker_tasks WHERE title LIKE :t"), {"t": TAG + "%"})


# Every screen: nothing wider than the phone, every visible control at least thumb-sized.
LAYOUT = """() => {
  const small = [];
  for (const el of document.querySelectorAll('button, a[href], input, textarea, select, label.file')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || el.closest('[hidden]')) continue;
    if (el.type === 'radio' || el.type === 'file' || el.classList.contains('thumb')) continue;
    if (r.height < 44) small.push(`${el.tagName}:${(el.textContent || el.name || '').trim().slice(0, 20)}:${Math.round(r.height)}`);
  }
  const wide = [...document.querySelectorAll('body *')].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width && !el.closest('[hidden]') && r.right > 360.5;
  }).map((el) => el.tagName + '#' + el.id);
  return {width: document.documentElement.scrollWidth, small, wide};
}"""

# The outbox has nothing left to send and its last entry (of that kind) is sent.
OUTBOX_DONE = """(kind) => window.wangge.outbox.entries().then((es) => {
  const last = es.filter((e) => !kind || e.kind === kind).pop();
  return Boolean(last) && last.state === 'done' && es.every((e) => e.state === 'done');
})"""


async def until(page: Any, kind: str | None = None, timeout: float = 30) -> None:
    """Poll the outbox (an async read of IndexedDB, which wait_for_function does not await)."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(OUTBOX_DONE, kind):
        if time.monotonic() > deadline:
            raise AssertionError(await page.evaluate("window.wangge.outbox.entries()"))
        await asyncio.sleep(0.2)


# pushManager as a browser with a push service would answer: the test's push service's subscription.
PUSH_STUB = """(() => {
  const sub = __SUBSCRIPTION__;
  let made = null;
  PushManager.prototype.subscribe = async function () {
    made = { endpoint: sub.endpoint, toJSON: () => sub };
    return made;
  };
  PushManager.prototype.getSubscription = async function () { return made; };
})()"""

FIELD_POSTS = re.compile(
    r".*/api/v1/(patrols(/\d+/(points|pause|resume|end))?|checkpoints/\d+/checkins|"
    r"buildings/\d+/visits|me/tasks/\d+/(accept|done|decline))$"
)


async def _counts(engine, patrol_id: int, checkpoints: list[int], worker: int, since: datetime):  # type: ignore[no-untyped-def]
    async with engine.connect() as c:
        return (
            await c.execute(
                text(
                    "SELECT (SELECT count(*) FROM patrol_points WHERE patrol_id = :p) points, "
                    "(SELECT count(DISTINCT client_id) FROM patrol_points WHERE patrol_id = :p) ids, "
                    "(SELECT count(*) FROM checkins WHERE checkpoint_id = ANY(:cp)) checkins, "
                    "(SELECT count(*) FROM checkins WHERE checkpoint_id = ANY(:cp) AND patrol_id = :p) "
                    "on_patrol, "
                    "(SELECT count(*) FROM visits WHERE worker_id = :w AND created_at >= :t) visits, "
                    "(SELECT count(*) FROM patrols WHERE worker_id = :w AND created_at >= :t) patrols, "
                    "(SELECT status FROM patrols WHERE id = :p) status, "
                    "(SELECT jsonb_array_length(pauses) FROM patrols WHERE id = :p) pauses"
                ),
                {"p": patrol_id, "cp": checkpoints, "w": worker, "t": since},
            )
        ).one()


async def test_patrol_checkins_visit_task_and_push(server: str, engine, field, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright, expect

    lon, lat = field["start"]
    pos = [lon, lat]
    cps = [cp["id"] for cp in field["checkpoints"]]
    errors: list[str] = []
    posts: list[str] = []
    with PushService() as push:
        device = push.device("phone")
        async with async_playwright() as pw:
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
                geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
                permissions=["geolocation", "notifications", "background-sync"],
            )
            # Headless Chromium has no push service (pushManager.subscribe never answers): the
            # test's push service stands in for it, with a device key pair the test holds.
            await ctx.add_init_script(PUSH_STUB.replace("__SUBSCRIPTION__", json.dumps(device)))
            try:
                watch = guard(ctx, server, errors, posts)

                async def shot(page: Any, name: str) -> None:
                    layout = await page.evaluate(LAYOUT)
                    assert layout["width"] <= 360 and not layout["wide"], (name, layout)
                    assert not layout["small"], (name, layout["small"])
                    fixed = "(v) => { for (const s of ['#bar', '#tabbar', '#toast']) document.querySelector(s).style.position = v; }"
                    await page.evaluate(fixed, "static")
                    await page.screenshot(
                        path=ARTIFACTS / f"field-patrol-{name}.png", full_page=True
                    )
                    await page.evaluate(fixed, "")

                async def walk(page: Any | None, steps: int, recorded: bool = True) -> None:
                    """The device moves field["step"] metres east per step, a fix a little over a second apart
                    (the app keeps a fix 5 m and 1 s from the last)."""
                    for _ in range(steps):
                        await asyncio.sleep(1.1)
                        pos[0], pos[1] = _east(pos[0], pos[1], field["step"])
                        before = (
                            await page.evaluate("window.wangge.patrol.current.recorded")
                            if page
                            else None
                        )
                        await ctx.set_geolocation(
                            {"longitude": pos[0], "latitude": pos[1], "accuracy": 8}
                        )
                        if page and recorded:
                            await page.wait_for_function(
                                "(n) => window.wangge.patrol.current.recorded > n", arg=before
                            )

                async def open_app() -> Any:
                    page = await ctx.new_page()
                    watch(page)
                    await page.goto(f"{server}/app")
                    await page.wait_for_function(
                        "() => window.wangge && window.wangge.ready === true"
                    )
                    return page

                # 1. Sign in; turn on push messages: the device is registered with the server.
                page = ctx.pages[0] if ctx.pages else await ctx.new_page()
                watch(page)
                await page.goto(f"{server}/app")
                await page.fill("input[name=username]", "worker")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("#login-form button[type=submit]")
                await page.wait_for_function("() => window.wangge && window.wangge.ready === true")
                await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
                await page.click("#push-enable")
                await expect(page.locator("#push-state")).to_contain_text("已开启")
                async with engine.connect() as c:
                    sub = (
                        await c.execute(
                            text(
                                "SELECT id, user_id, active FROM push_subscriptions WHERE endpoint = :e"
                            ),
                            {"e": device["endpoint"]},
                        )
                    ).one()
                field["subscription"] = sub.id
                assert (sub.user_id, sub.active) == (field["worker"], True)
                await shot(page, "1-home-push")

                # 2. The patrol screen: the grid, its check-in points; start online.
                await page.click('[data-nav="patrol"]')
                for cp in cps:
                    await expect(
                        page.locator(f'#checkpoint-list li[data-checkpoint="{cp}"]')
                    ).to_be_visible()
                await page.check(f'#patrol-grids input[value="{field["grid_id"]}"]')
                await shot(page, "2-idle")
                await page.click("#patrol-start")
                await expect(page.locator("#patrol-status")).to_contain_text("巡查中")
                await until(page, "patrol")
                local = await page.evaluate("window.wangge.patrol.current.local")
                async with engine.connect() as c:
                    patrol_id, status = (
                        await c.execute(
                            text("SELECT id, status FROM patrols WHERE client_id = :c"),
                            {"c": local},
                        )
                    ).one()
                assert status == "active"
                await walk(page, 4)

                # 3. The network cut: the walk goes on, a check-in at the first point, a pause
                # (the fixes meanwhile are not kept), a resume, the second point, a visit.
                await ctx.set_offline(True)
                await expect(page.locator("#net")).to_have_text("离线")
                await walk(page, 4)
                first = page.locator(f'#checkpoint-list li[data-checkpoint="{cps[0]}"]')
                await expect(first).not_to_contain_text("不在范围内")
                await first.locator('[data-do="checkin"]').click()
                await expect(first).to_contain_text("本次巡查已打卡")
                await page.click("#patrol-pause")
                await expect(page.locator("#patrol-status")).to_contain_text("已暂停")
                await walk(page, 2, recorded=False)
                await page.click("#patrol-resume")
                await expect(page.locator("#patrol-status")).to_contain_text("巡查中")
                await walk(page, 5)
                second = page.locator(f'#checkpoint-list li[data-checkpoint="{cps[1]}"]')
                await expect(second).not_to_contain_text("不在范围内")
                await second.locator('[data-do="checkin"]').click()
                await expect(second).to_contain_text("本次巡查已打卡")
                await expect(page.locator('[data-stat="checkins"] dd')).to_have_text("2")
                await shot(page, "3-live-offline")
                await page.click("#visit-open")
                await expect(page.locator("#building-list button").first).to_be_visible()
                await page.locator("#building-list button").first.click()
                await expect(page.locator("#building-chosen")).to_contain_text("已选")
                await page.locator("#purpose-list label").first.click()
                await page.check('#visit-form input[value="follow_up"]')
                await page.fill("#visit-form textarea[name=note]", "独居老人，下周再访")
                await shot(page, "4-visit")
                await page.click("#visit-form button[type=submit]")
                await expect(page.locator('[data-screen="patrol"]')).to_be_visible()
                await expect(page.locator('[data-stat="visits"] dd')).to_have_text("1")
                await walk(page, 3)
                recorded = await page.evaluate("window.wangge.patrol.current.recorded")
                assert recorded == 16
                await page.click('[data-nav="outbox"]')
                # The fixes up to the pause (sealed into a batch by the pause), a check-in, the
                # pause, the resume, a check-in, the visit; the fixes since wait in the track.
                await expect(page.locator("#outbox-list li[data-state=waiting]")).to_have_count(6)
                await shot(page, "5-outbox-offline")
                assert await _counts(engine, patrol_id, cps, field["worker"], field["since"]) == (
                    0,
                    0,
                    0,
                    0,
                    0,
                    1,
                    "active",
                    0,
                )

                # 4. The app closed, the network still cut; then it comes back with no page
                # open: the service worker's Background Sync sends the queue.
                await page.close()
                assert ctx.pages == []
                before = len(posts)
                await ctx.set_offline(False)
                deadline = time.monotonic() + 90
                while True:
                    got = await _counts(engine, patrol_id, cps, field["worker"], field["since"])
                    if (got.points, got.checkins, got.visits, got.pauses) == (recorded, 2, 1, 1):
                        break
                    assert time.monotonic() < deadline, got
                    await asyncio.sleep(0.5)
                assert ctx.pages == []  # sent with the app closed
                [sw] = ctx.service_workers
                assert await sw.evaluate("self.drained") >= 1
                sent = await sw.evaluate("self.sent.map((x) => x.kind)")
                assert sorted(sent) == sorted(
                    [
                        "points",
                        "points",
                        "checkin",
                        "patrol-step",
                        "patrol-step",
                        "checkin",
                        "visit",
                    ]
                ), sent
                got = await _counts(engine, patrol_id, cps, field["worker"], field["since"])
                assert got.points == got.ids == recorded  # each fix once
                assert (got.on_patrol, got.patrols, got.status) == (2, 1, "active")
                async with engine.connect() as c:
                    accepted = list(
                        (
                            await c.execute(
                                text(
                                    "SELECT accepted FROM checkins WHERE checkpoint_id = ANY(:cp) "
                                    "ORDER BY checkpoint_id"
                                ),
                                {"cp": cps},
                            )
                        ).scalars()
                    )
                    outcome = (
                        await c.execute(
                            text(
                                "SELECT outcome, patrol_id FROM visits WHERE worker_id = :w "
                                "AND created_at >= :t"
                            ),
                            {"w": field["worker"], "t": field["since"]},
                        )
                    ).one()
                assert accepted == [True, True]
                assert tuple(outcome) == ("follow_up", patrol_id)
                n_sw = len(posts) - before

                # 5. Reopened: the outbox shows it all sent, nothing is sent again.
                page = await open_app()
                await page.click('[data-nav="outbox"]')
                await until(page)
                await expect(page.locator("#outbox-list li[data-state=done]").first).to_be_visible()
                await page.wait_for_timeout(3000)
                assert [u for u in posts[before + n_sw :] if FIELD_POSTS.match(u)] == []
                await page.click('[data-nav="patrol"]')
                await expect(page.locator("#patrol-status")).to_contain_text("巡查中")
                await expect(page.locator('[data-stat="points"] dd')).to_have_text(str(recorded))

                # 6. The end over a flaky network: the last batch and the end reach the server,
                # commit, and their responses are dropped; the app sends each again.
                dropped: dict[str, int] = {}

                async def flaky(route: Any, request: Any) -> None:
                    key = request.url
                    if request.method != "POST" or key in dropped:
                        await route.continue_()
                        return
                    response = await route.fetch()
                    if response.status >= 300:
                        await route.fulfill(response=response)
                        return
                    dropped[key] = response.status
                    await route.abort("connectionreset")

                lossy = re.compile(r".*/api/v1/(patrols/\d+/(points|end)|me/tasks/\d+/accept)$")
                await ctx.route(lossy, flaky)
                await walk(page, 3)
                recorded += 3
                page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
                await page.click("#patrol-end")
                await expect(page.locator("#patrol-status")).to_contain_text("已结束")
                await until(page, "patrol-step", 60)
                assert sorted(dropped) == [
                    f"{server}/api/v1/patrols/{patrol_id}/end",
                    f"{server}/api/v1/patrols/{patrol_id}/points",
                ], dropped
                got = await _counts(engine, patrol_id, cps, field["worker"], field["since"])
                assert (got.points, got.ids, got.status, got.patrols) == (
                    recorded,
                    recorded,
                    "ended",
                    1,
                )
                last = await page.evaluate(
                    "window.wangge.outbox.entries().then((es) => es.filter((e) => e.kind === 'points').pop().result)"
                )
                assert (last["received"], last["stored"], last["duplicates"]) == (3, 0, 3), last
                await page.click('[data-nav="outbox"]')
                await expect(
                    page.locator('#outbox-list [data-result="points"]').first
                ).to_contain_text("重复 3 个")
                await shot(page, "6-outbox-sent")
                await page.click('[data-nav="patrol"]')
                await shot(page, "7-ended")
                await page.click("#patrol-close")
                await expect(page.locator("#patrol-idle")).to_be_visible()

                # 7. A second cut and restore sends nothing more.
                before = len(posts)
                await ctx.set_offline(True)
                await page.wait_for_timeout(500)
                await ctx.set_offline(False)
                await page.wait_for_timeout(3000)
                assert [u for u in posts[before:] if FIELD_POSTS.match(u)] == []
                assert await _counts(engine, patrol_id, cps, field["worker"], field["since"]) == got

                # 8. A task for the worker: pushed (VAPID checked, payload decrypted by the local
                # push service), delivered to the service worker as the browser's push service
                # would, shown; the tap opens the task.
                async with httpx.AsyncClient(base_url=server) as api:
                    r = await api.post(
                        "/api/v1/worker-tasks",
                        json={
                            "kind": "inspection",
                            "title": f"{TAG} 检查消防通道堆物",
                            "description": "3号楼东侧消防通道",
                            "worker_id": field["worker"],
                            "grid_id": field["grid_id"],
                            "due_value": 1,
                            "due_unit": "days",
                        },
                        headers=await _token(api, "street"),
                    )
                    assert r.status_code == 201, r.text
                    task_id = r.json()["id"]
                from app.push.service import deliver_due

                for _ in range(50):
                    async with AsyncSession(engine, expire_on_commit=False) as s:
                        await deliver_due(s)
                        await s.commit()
                    if any(
                        m.message and m.message.get("task_id") == task_id for m in push.received
                    ):
                        break
                [msg] = [
                    m for m in push.received if m.message and m.message.get("task_id") == task_id
                ]
                assert msg.status == 201 and msg.message["title"] == "新任务（检查）"
                assert msg.message["url"] == f"/app#task/{task_id}"

                cdp = await ctx.new_cdp_session(page)
                regs: list[dict[str, Any]] = []
                cdp.on(
                    "ServiceWorker.workerRegistrationUpdated",
                    lambda e: regs.extend(e["registrations"]),
                )
                await cdp.send("ServiceWorker.enable")
                for _ in range(50):
                    if regs:
                        break
                    await asyncio.sleep(0.1)
                [reg] = [x for x in regs if x["scopeURL"].endswith("/app") and not x["isDeleted"]][
                    :1
                ]
                await page.click('[data-nav="home"]')
                await cdp.send(
                    "ServiceWorker.deliverPushMessage",
                    {
                        "origin": server,
                        "registrationId": reg["registrationId"],
                        "data": json.dumps(msg.message, ensure_ascii=False),
                    },
                )
                [sw] = ctx.service_workers
                shown = None
                for _ in range(50):
                    shown = await sw.evaluate(
                        "self.registration.getNotifications().then((ns) => ns.map((n) => [n.title, n.body, n.data.task_id]))"
                    )
                    if shown:
                        break
                    await asyncio.sleep(0.1)
                assert shown == [["新任务（检查）", f"{TAG} 检查消防通道堆物", task_id]], shown
                # The tap (no way to click a notification in headless Chromium: the event the
                # browser would fire, dispatched in the worker with the notification shown).
                await sw.evaluate(
                    "self.registration.getNotifications().then((ns) => self.dispatchEvent("
                    "new NotificationEvent('notificationclick', { notification: ns[0] })))"
                )
                await page.wait_for_function(f"() => location.hash === '#task/{task_id}'")
                view = page.locator("#task-view")
                await expect(view).to_contain_text("检查消防通道堆物")
                await expect(view.locator("[data-task-state]")).to_have_text("待接受")
                await shot(page, "8-task")

                # 9. Accept (the response dropped once: the replay finds it accepted), then done.
                await page.click('#task-form [data-task="accept"]')
                await expect(view.locator("[data-task-state]")).to_have_text(
                    "办理中", timeout=20_000
                )
                await until(page, "task")
                assert f"{server}/api/v1/me/tasks/{task_id}/accept" in dropped
                await page.fill("#task-form textarea[name=note]", "已清理堆物")
                await page.click('#task-form [data-task="done"]')
                await page.wait_for_timeout(300)
                await until(page, "task")
                async with engine.connect() as c:
                    state, result = (
                        await c.execute(
                            text("SELECT state, result FROM worker_tasks WHERE id = :i"),
                            {"i": task_id},
                        )
                    ).one()
                assert (state, result) == ("done", "已清理堆物")
                await ctx.unroute(lossy)
                await page.click('[data-nav="tasks"]')
                await page.click('#task-tabs [data-tab="mytasks"]')
                await shot(page, "9-my-tasks")
            finally:
                await ctx.close()
    assert not errors, errors

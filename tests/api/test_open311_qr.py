"""The residents' QR door: the service card links a small mobile page that reports through the
Open311 intake with the server's own QR key: no account, rate-limited, photo through the
attachment pipeline, one case per form however often it is sent."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.errors import ApiError
from app.open311.public_ids import decode
from app.open311.qr_router import check_form_token, form_token
from tests.api.open311_support import cgj_category, check_json, point_in
from tests.helpers import jpeg

GRID = "360602001001001"


async def _page(anon) -> tuple[str, str]:
    r = await anon.get(f"/open311/qr/{GRID}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in r.text and "navigator.geolocation" in r.text
    assert 'capture="environment"' in r.text and 'enctype="multipart/form-data"' in r.text
    token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
    return r.text, token


async def test_card_links_the_form_and_a_report_with_photo(
    anon, as_user, conn, tmp_path, monkeypatch
) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "media_dir", str(tmp_path))
    grid_id = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID})
    ).scalar_one()
    card = (await anon.get(f"/api/v1/grids/{grid_id}/card")).json()
    assert card["report_url"] == f"/open311/qr/{GRID}"
    page, token = await _page(anon)
    cat = await cgj_category(conn)
    assert f'value="{cat}"' in page and "立新社区" in page
    lon, lat = await point_in(conn, GRID)
    data = {
        "token": token,
        "service_code": cat,
        "description": "小区门口路灯坏了一个星期",
        "lat": str(lat),
        "long": str(lon),
        "accuracy": "12.5",
        "phone": "13611112222",
    }
    files = {"photo": ("IMG_0001.jpg", jpeg(lon, lat), "image/jpeg")}
    r = await anon.post(f"/open311/qr/{GRID}", data=data, files=files)
    assert r.status_code == 200, r.text
    number = re.search(r"事件编号：<b>(\d+)</b>", r.text).group(1)
    case_id = decode(re.search(r"/open311/v2/requests/([0-9a-f]{32})\.json", r.text).group(1))
    case = (await anon.get(f"/api/v1/cases/{case_id}", headers=as_user("admin"))).json()
    assert case["number"] == number and case["channel"] == "qr"
    assert case["grid"]["code"] == GRID and case["location"]["accuracy_m"] == 12.5
    assert case["resident"]["phone"] == "13611112222"
    assert case["reporter"]["name"] == "网格服务卡二维码"
    [photo] = case["attachments"]
    assert photo["media_type"] == "image/jpeg" and photo["event_id"] == case["timeline"][0]["id"]
    # public: no phone
    public = re.search(r"/open311/v2/requests/([0-9a-f]{32})\.json", r.text).group(1)
    [one] = check_json(await anon.get(f"/open311/v2/requests/{public}.json"), "requests.json")
    assert "13611112222" not in str(one) and one["status"] == "open"
    # the same page sent again (a double tap, a reload): the same case, nothing new
    again = await anon.post(f"/open311/qr/{GRID}", data=data, files=files)
    assert again.status_code == 200 and f"事件编号：<b>{number}</b>" in again.text
    n = (await conn.execute(text("SELECT count(*) FROM cases WHERE channel = 'qr'"))).scalar_one()
    assert n == 1
    # the built-in QR key is listed for admins, never with its secret
    keys = (await anon.get("/api/v1/open311/keys", headers=as_user("admin"))).json()
    [qr] = [k for k in keys if k["builtin"]]
    assert qr["channel"] == "qr" and qr["active"]


async def test_without_location_and_errors(anon, as_user, conn) -> None:
    _, token = await _page(anon)
    cat = await cgj_category(conn)
    r = await anon.post(
        f"/open311/qr/{GRID}",
        data={"token": token, "service_code": cat, "description": "垃圾桶满了"},
    )
    assert r.status_code == 200, r.text
    case_id = decode(re.search(r"/open311/v2/requests/([0-9a-f]{32})\.json", r.text).group(1))
    case = (await anon.get(f"/api/v1/cases/{case_id}", headers=as_user("admin"))).json()
    assert case["grid"]["code"] == GRID  # the grid's own point
    assert case["address"].endswith("（扫码上报，未取得手机定位）")

    async def bad(status: int, **data) -> str:
        # Every post counts against the address; not what this tests.
        await conn.execute(text("DELETE FROM rate_counters WHERE key LIKE 'qr:%'"))
        r = await anon.post(f"/open311/qr/{GRID}", data=data)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("text/html")
        return r.text

    _, token = await _page(anon)
    assert "表单已过期" in await bad(400, token="1.2.3", service_code=cat, description="x")
    other = form_token("360602001001002")
    assert "表单已过期" in await bad(400, token=other, service_code=cat, description="x")
    old = form_token(GRID, now=time.time() - 3 * 3600)
    assert "表单已过期" in await bad(400, token=old, service_code=cat, description="x")
    await bad(400, token=token, service_code="NO-SUCH", description="x")
    await bad(400, token=token, service_code=cat)  # no description
    await bad(400, token=token, service_code=cat, description="x", phone="110")
    await conn.execute(text("DELETE FROM rate_counters WHERE key LIKE 'qr:%'"))
    r = await anon.post(
        f"/open311/qr/{GRID}",
        data={"token": token, "service_code": cat, "description": "x"},
        files={"photo": ("a.jpg", b"not an image at all", "image/jpeg")},
    )
    assert r.status_code == 415 and "上报未成功" in r.text
    assert (await anon.get("/open311/qr/NO-SUCH-GRID")).status_code == 404
    n = (await conn.execute(text("SELECT count(*) FROM cases WHERE channel = 'qr'"))).scalar_one()
    assert n == 1  # none of the bad ones made a case
    # revoking the built-in key closes the door
    qr = next(
        k
        for k in (await anon.get("/api/v1/open311/keys", headers=as_user("admin"))).json()
        if k["builtin"]
    )
    await anon.delete(f"/api/v1/open311/keys/{qr['id']}", headers=as_user("admin"))
    _, token = await _page(anon)
    assert "暂停服务" in await bad(503, token=token, service_code=cat, description="x")


async def test_rate_limited_per_address(anon, conn, monkeypatch) -> None:
    """Counted in PostgreSQL (the same for every replica), per address and hour."""
    monkeypatch.setattr(get_settings(), "qr_per_hour", 3)
    cat = await cgj_category(conn)
    for _ in range(3):
        _, token = await _page(anon)
        r = await anon.post(
            f"/open311/qr/{GRID}", data={"token": token, "service_code": cat, "description": "x"}
        )
        assert r.status_code == 200, r.text
    _, token = await _page(anon)
    r = await anon.post(
        f"/open311/qr/{GRID}", data={"token": token, "service_code": cat, "description": "x"}
    )
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 3600
    assert "请求过于频繁" in r.text and "每小时最多 3 次" in r.text
    [hits] = (
        await conn.execute(text("SELECT hits FROM rate_counters WHERE key LIKE 'qr:ip:%'"))
    ).scalars()
    assert hits == 4


def test_form_tokens() -> None:
    t = form_token(GRID, now=1_000_000)
    assert check_form_token(t, GRID, now=1_000_000 + 60).hex == t.split(".")[1]
    with pytest.raises(ApiError):
        check_form_token(t, GRID, now=1_000_000 + 3 * 3600)
    with pytest.raises(ApiError):
        check_form_token(t.replace(".", ".0", 1), GRID, now=1_000_000)


async def test_the_card_qr_code_image(anon, monkeypatch) -> None:
    from defusedxml import ElementTree as SafeET

    from app.config import get_settings
    from app.open311.qr_router import qr_svg

    r = await anon.get(f"/open311/qr/{GRID}/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert SafeET.fromstring(r.content).tag == "{http://www.w3.org/2000/svg}svg"
    title = re.search(r"<title>([^<]+)</title>", r.text).group(1)
    # the code holds the page's absolute address (the same bytes as encoding it directly)
    assert r.content == qr_svg(f"http://test/open311/qr/{GRID}", title)
    monkeypatch.setattr(get_settings(), "public_url", "https://wangge.example.gov.cn/")
    r = await anon.get(f"/open311/qr/{GRID}/qr.svg")
    assert r.content == qr_svg(f"https://wangge.example.gov.cn/open311/qr/{GRID}", title)
    assert (await anon.get("/open311/qr/NO-SUCH/qr.svg")).status_code == 404

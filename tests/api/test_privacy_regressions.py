"""Issue 17: who the client is, who can lock whom out, which key signs.

- `X-Forwarded-For` is read only from configured proxies (loopback was trusted: a forged address
  landed in the audit log and keyed the per-address limit); `X-Forwarded-Proto` likewise, which
  makes the SSE cookie `Secure` behind an HTTPS proxy.
- The lockout counts per user name and source address: five failures from one address do not
  lock the person out from another, an unknown name is locked exactly as a known one, and the
  message gives the right minutes (15, not 16).
- ENV=production refuses the development signing key and keys shorter than 32 bytes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from app.config import DEVELOPMENT_KEY, Settings, get_settings
from app.http import ForwardedMiddleware
from app.main import app
from tests.helpers import problem

PASSWORD = "Wangge#2026"


# --- X-Forwarded-For / -Proto -----------------------------------------------------------------


async def _seen(trusted: list[str], peer: str, headers: dict[str, str]) -> tuple[str, str]:
    got: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        got["client"], got["scheme"] = scope["client"][0], scope["scheme"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = ForwardedMiddleware(inner, [ipaddress.ip_network(t) for t in trusted])
    transport = httpx.ASGITransport(app=mw, client=(peer, 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await c.get("/", headers=headers)
    return got["client"], got["scheme"]


async def test_forwarded_headers_only_from_configured_proxies() -> None:
    forged = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}
    # default: no proxy is trusted, loopback included
    assert get_settings().trusted_proxies == ""
    assert await _seen([], "127.0.0.1", forged) == ("127.0.0.1", "http")
    # a configured proxy: its header is read
    assert await _seen(["10.0.0.0/8"], "10.1.2.3", forged) == ("198.51.100.9", "https")
    # but not from another peer
    assert await _seen(["10.0.0.0/8"], "203.0.113.5", forged) == ("203.0.113.5", "http")
    # the rightmost untrusted hop: what the client wrote to the left is not believed
    chain = {"X-Forwarded-For": "1.1.1.1, 198.51.100.9, 10.0.0.7"}
    assert await _seen(["10.0.0.0/8"], "10.1.2.3", chain) == ("198.51.100.9", "http")
    # garbage is no address
    assert (await _seen(["10.0.0.0/8"], "10.1.2.3", {"X-Forwarded-For": "evil"}))[0] == "10.1.2.3"


async def test_a_forged_forwarded_for_does_not_reach_the_audit_log(
    anon: httpx.AsyncClient, conn: Any
) -> None:
    r = await anon.post(
        "/api/v1/auth/token",
        data={"username": "worker", "password": "wrong-password"},
        headers={"X-Forwarded-For": "198.51.100.77"},
    )
    assert r.status_code == 401
    ip = (
        await conn.execute(
            text(
                "SELECT ip FROM audit_log WHERE action = 'login_failed' AND actor = 'worker' "
                "ORDER BY id DESC LIMIT 1"
            )
        )
    ).scalar_one()
    assert ip == "127.0.0.1"


def test_the_app_trusts_no_proxy_by_default() -> None:
    [mw] = [m for m in app.user_middleware if m.cls is ForwardedMiddleware]
    assert mw.kwargs["trusted"] == []


async def test_sse_cookie_is_secure_behind_an_https_proxy(
    anon: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    from app.events import stream

    h = {"Authorization": f"Bearer {tokens['worker']}"}
    r = await anon.post(f"{stream.PREFIX}/ticket", headers=h)
    assert r.status_code == 200, r.text
    assert "secure" not in r.headers["set-cookie"].lower()  # plain http, no proxy
    # behind a trusted proxy that terminated TLS
    proxied = ForwardedMiddleware(app, [ipaddress.ip_network("127.0.0.1/32")])
    transport = httpx.ASGITransport(app=proxied, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post(f"{stream.PREFIX}/ticket", headers={**h, "X-Forwarded-Proto": "https"})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie


# --- the lockout ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def elsewhere(
    anon: httpx.AsyncClient, conn: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """A client from another address, on the same test transaction as `anon` (the per-minute
    login limits raised: this is about the lockout)."""
    await conn.execute(text("DELETE FROM rate_counters"))
    monkeypatch.setattr(get_settings(), "login_per_account_per_minute", 1000)
    transport = httpx.ASGITransport(
        app=app, raise_app_exceptions=False, client=("203.0.113.50", 4321)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _login(c: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/api/v1/auth/token", data={"username": name, "password": password})


async def test_lockout_is_per_name_and_address(
    anon: httpx.AsyncClient, elsewhere: httpx.AsyncClient, client: Any
) -> None:
    for _ in range(5):
        problem(await _login(anon, "worker2", "bad-password"), 401, "invalid_credentials")
    body = problem(await _login(anon, "worker2"), 403, "account_locked")
    # the right minutes: 15 (the old message said 16)
    assert f"{get_settings().lockout_minutes} 分钟" in body["detail"], body["detail"]
    r = await anon.post(
        "/api/v1/auth/token",
        data={"username": "worker2", "password": PASSWORD},
        headers={"Accept-Language": "en"},
    )
    assert "15 minutes" in r.json()["detail"]
    assert 14 * 60 < int(r.headers["retry-after"]) <= 15 * 60
    # from another address the person signs in: nobody can lock them out from elsewhere
    r = await _login(elsewhere, "worker2")
    assert r.status_code == 200, r.text
    # still locked from the first address
    problem(await _login(anon, "worker2"), 403, "account_locked")


async def test_unknown_names_lock_the_same_way(anon: httpx.AsyncClient, elsewhere: Any) -> None:
    known, unknown = [], []
    for _ in range(5):
        known.append(await _login(anon, "dept2", "bad-password"))
        unknown.append(await _login(anon, "no-such-user-17", "bad-password"))
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 5
    a = problem(await _login(anon, "dept2", "bad-password"), 403, "account_locked")
    b = problem(await _login(anon, "no-such-user-17", "bad-password"), 403, "account_locked")
    for body in (a, b):
        body.pop("request_id")
    assert a == b
    # the case of the name does not make another account
    problem(await _login(anon, "DEPT2", "bad-password"), 403, "account_locked")


async def test_an_administrator_unlock_clears_every_address(
    anon: httpx.AsyncClient, elsewhere: httpx.AsyncClient, client: Any, conn: Any
) -> None:
    for c in (anon, elsewhere):
        for _ in range(5):
            await _login(c, "leader", "bad-password")
        problem(await _login(c, "leader"), 403, "account_locked")
    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'leader'"))).scalar()
    admin = {"Authorization": client.headers["Authorization"]}
    r = await anon.patch(f"/api/v1/users/{uid}", json={"unlock": True}, headers=admin)
    assert r.status_code == 200, r.text
    for c in (anon, elsewhere):
        assert (await _login(c, "leader")).status_code == 200


# --- the signing key --------------------------------------------------------------------------


def test_production_refuses_the_development_key_and_short_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k in [k for k in __import__("os").environ if k.startswith("WANGGE_")]:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ENV", "production")
    for key in (None, DEVELOPMENT_KEY, "短" * 10 + "x"):  # 31 bytes in 11 characters
        if key is None:
            monkeypatch.delenv("WANGGE_SECRET_KEY", raising=False)
        else:
            monkeypatch.setenv("WANGGE_SECRET_KEY", key)
        with pytest.raises(ValidationError):
            Settings()
    monkeypatch.setenv("WANGGE_SECRET_KEY", "k" * 32)
    assert Settings().signing_key == "k" * 32
    monkeypatch.setenv("ENV", "development")
    monkeypatch.delenv("WANGGE_SECRET_KEY")
    assert Settings().signing_key == DEVELOPMENT_KEY


# --- the public Open311 feed ------------------------------------------------------------------


async def test_internal_reports_stay_internal(
    anon: httpx.AsyncClient, as_user: Any, conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grid worker's report (channel `app`) was listed to anyone with its text, address and
    exact place; it is now neither listed, nor in the update feed, nor readable by id. Marking its
    category public (or its channel) publishes it, generalised to the 50 m grid."""
    from app.open311 import public_ids
    from tests.factories import report_case

    case = await report_case(anon, as_user, conn)  # by the grid worker: channel app
    public = public_ids.encode(case["id"])
    listed = await anon.get("/open311/v2/requests.json")
    assert listed.status_code == 200
    assert public not in {r["service_request_id"] for r in listed.json()}
    assert (await anon.get(f"/open311/v2/requests/{public}.json")).status_code == 404
    one = await anon.get("/open311/v2/requests.json", params={"service_request_id": public})
    assert one.json() == []
    feed = await anon.get(
        "/open311/v2/servicerequestupdates.json", params={"service_request_id": public}
    )
    assert feed.status_code == 200 and feed.json() == []
    # the sequential id never works at the public door
    assert (await anon.get(f"/open311/v2/requests/{case['id']}.json")).status_code == 404

    monkeypatch.setattr(get_settings(), "open311_public_categories", case["category"]["code"])
    r = await anon.get(f"/open311/v2/requests/{public}.json")
    assert r.status_code == 200, r.text
    [item] = r.json()
    assert item["service_request_id"] == public
    exact = case["location"]
    # snapped: within the 50 m cell (its centre), not the exact point
    assert abs(item["lat"] - exact["lat"]) <= 50 / 111_320 and item["lat"] != round(exact["lat"], 7)
    assert abs(item["long"] - exact["lon"]) <= 60 / 111_320 * 1.2
    monkeypatch.setattr(get_settings(), "open311_snap_m", 0)
    [exact_item] = (await anon.get(f"/open311/v2/requests/{public}.json")).json()
    assert exact_item["lat"] == round(exact["lat"], 7)


def test_public_ids_are_opaque_and_not_sequential() -> None:
    from app.open311 import public_ids

    a, b = public_ids.encode(41), public_ids.encode(42)
    assert len(a) == len(b) == 32 and a != b
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 16  # no shared prefix to count on
    assert public_ids.decode(a) == 41 and public_ids.decode(b) == 42
    assert public_ids.decode(public_ids.encode(42, "update")) is None  # kinds do not mix
    for junk in ("42", "0" * 32, a.upper(), a[:-1] + ("0" if a[-1] != "0" else "1"), ""):
        assert public_ids.decode(junk) is None, junk

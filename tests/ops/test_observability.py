"""Observability (issue 22): /metrics (Prometheus), the request id in every answer and log line,
JSON logs without personal data, /readyz through PL/pgSQL."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest
from sqlalchemy import text

from tests.helpers import problem

PHONE = "13812345678"
ID_NUMBER = "36060219900101123X"


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """The app's own log formatter (JSON, scrubbed), writing into a buffer."""
    from app.observability import configure_logging

    configure_logging()
    root = logging.getLogger()
    [ours] = [h for h in root.handlers if h.get_name() == "wangge"]
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(ours.formatter)
    root.addHandler(handler)
    try:
        yield buf
    finally:
        root.removeHandler(handler)


def lines(buf: io.StringIO) -> list[dict]:
    return [orjson.loads(x) for x in buf.getvalue().splitlines() if x.strip()]


def metric(body: str, name: str, **labels: str) -> float:
    """The value of one sample of the text exposition format."""
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:]+)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    raise AssertionError(f"no sample {name} {labels}")


async def _case_body(conn) -> dict:  # type: ignore[no-untyped-def]
    lon, lat = (
        await conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
                "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
                "WHERE g.code = '360602001001001' AND b.valid_to IS NULL) x"
            )
        )
    ).one()
    cat = (await conn.execute(text("SELECT code FROM categories ORDER BY code LIMIT 1"))).scalar()
    return {"category": cat, "title": "楼道堆物", "location": {"lon": lon, "lat": lat}}


async def test_metrics_by_route_template_status_and_district(anon, as_user, conn) -> None:
    body = await _case_body(conn)
    r = await anon.post("/api/v1/cases", json=body, headers=as_user("worker"))
    assert r.status_code == 201, r.text
    case = r.json()
    r = await anon.get(f"/api/v1/cases/{case['id']}", headers=as_user("worker"))
    assert r.status_code == 200
    problem(await anon.get("/api/v1/cases/999999999", headers=as_user("worker")), 404, "not_found")

    r = await anon.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    m = r.text
    # by route template (never the raw path: one series per route, not per case)
    assert (
        metric(m, "wangge_http_requests_total", route="/api/v1/cases/{case_id}", status="200") >= 1
    )
    assert (
        metric(m, "wangge_http_requests_total", route="/api/v1/cases/{case_id}", status="404") >= 1
    )
    assert (
        metric(m, "wangge_http_requests_total", method="POST", route="/api/v1/cases", status="201")
        >= 1
    )
    assert f"/api/v1/cases/{case['id']}" not in m
    assert metric(m, "wangge_http_request_duration_seconds_count", route="/api/v1/cases") >= 1
    assert 'le="0.05"' in m
    district = str(case["district"]["id"])
    assert metric(m, "wangge_cases_reported_total", district=district, channel="app") >= 1
    for name in (
        "wangge_outbox_lag_seconds",
        "wangge_outbox_pending_deliveries",
        "wangge_derive_pending_cases",
        "wangge_sse_subscribers",
        "wangge_db_up",
    ):
        metric(m, name)
    assert metric(m, "wangge_db_up") == 1
    assert "wangge_db_pool_connections" in m
    assert "wangge_clock_runs_total" in m and "wangge_webhook_failures_total" in m


async def test_rate_limit_refusals_are_counted() -> None:
    from app.observability import metrics
    from app.observability.middleware import RequestContextMiddleware

    async def refuse(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 429, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = metrics.RATE_LIMITED.labels("(unmatched)")._value.get()
    transport = httpx.ASGITransport(app=RequestContextMiddleware(refuse))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/api/v1/auth/login")
    assert r.status_code == 429 and r.headers["x-request-id"]
    assert metrics.RATE_LIMITED.labels("(unmatched)")._value.get() == before + 1


async def test_metrics_are_not_for_outside_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings
    from app.main import app

    outside = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=outside, base_url="http://t") as c:
        problem(await c.get("/metrics"), 404, "route_not_found")
        token = "m" * 24
        monkeypatch.setattr(get_settings(), "metrics_token", token)
        problem(await c.get("/metrics"), 404, "route_not_found")
        problem(
            await c.get("/metrics", headers={"Authorization": "Bearer wrong"}),
            404,
            "route_not_found",
        )
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "wangge_http_requests_total" in r.text
    # with a token set, loopback needs it too (one rule)
    inside = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=inside, base_url="http://t") as c:
        problem(await c.get("/metrics"), 404, "route_not_found")


async def test_request_id_in_problem_header_and_every_log_line(anon, as_user, monkeypatch) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "access_log", True)
    with captured_logs() as buf:
        r = await anon.get("/api/v1/nowhere", headers={"X-Request-ID": "req-42.abc"})
        body = problem(r, 404, "route_not_found")
    assert body["request_id"] == "req-42.abc" == r.headers["x-request-id"]
    logged = [x for x in lines(buf) if x.get("request_id") == "req-42.abc"]
    assert logged and logged[-1]["event"] == "request" and logged[-1]["status"] == 404
    assert logged[-1]["route"] == "(unmatched)"

    # made when not given (or not a sane token: no log injection through the header)
    for sent in ({}, {"X-Request-ID": "bad id\twith spaces"}, {"X-Request-ID": "x" * 65}):
        r = await anon.get("/api/v1/cases/1", headers=sent)
        body = problem(r, 401, "unauthenticated")
        assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"]), body
        assert r.headers["x-request-id"] == body["request_id"]
    # a success carries the header too
    r = await anon.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])

    # without WANGGE_ACCESS_LOG (the default) no line per request, the header all the same
    monkeypatch.setattr(get_settings(), "access_log", False)
    with captured_logs() as buf:
        r = await anon.get("/healthz", headers={"X-Request-ID": "quiet-1"})
    assert r.headers["x-request-id"] == "quiet-1"
    assert not [x for x in lines(buf) if x.get("request_id") == "quiet-1"]


async def test_no_personal_data_in_logs(anon, as_user, conn, monkeypatch) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "access_log", True)
    body = await _case_body(conn)
    body["description"] = f"住户 {ID_NUMBER} 反映，电话 {PHONE}，另有 0793-8123456"
    body["resident"] = {"name": "张三", "phone": PHONE}
    with captured_logs() as buf:
        r = await anon.post(
            "/api/v1/cases", json=body, headers={**as_user("worker"), "X-Request-ID": "pii-1"}
        )
        assert r.status_code == 201, r.text
        # refused input and a query string carry it too
        bad = {**body, "resident": {"phone": PHONE + "0"}}
        await anon.post("/api/v1/cases", json=bad, headers=as_user("worker"))
        await anon.get(f"/api/v1/cases?q={PHONE}", headers=as_user("worker"))
        # and a line the app writes with it in the message and in an exception
        log = logging.getLogger("wangge.test")
        log.warning("refused by the database: Key (phone)=(%s) already exists", PHONE)
        try:
            raise ValueError(f"resident {ID_NUMBER} / +86 138-1234-5678")
        except ValueError:
            log.exception("database error")
    out = buf.getvalue()
    assert out, "nothing was logged"
    for secret in (PHONE, ID_NUMBER, "138-1234-5678", "8123456"):
        assert secret not in out, f"{secret} in the logs"
    parsed = lines(buf)
    assert any("[phone]" in x["event"] for x in parsed)
    assert any("[id-number]" in x.get("exception", "") for x in parsed)
    assert any(x.get("request_id") == "pii-1" and x["event"] == "request" for x in parsed)
    # the access line names the route, never the query string
    assert all("?" not in str(x.get("route", "")) for x in parsed)


def test_scrub_keeps_ids_and_hashes() -> None:
    from app.observability.logs import scrub

    assert scrub(f"call {PHONE}.") == "call [phone]."
    assert scrub("case 202612010000123456789 at 2026-12-01T09:30:00") == (
        "case 202612010000123456789 at 2026-12-01T09:30:00"
    )
    assert scrub("卡号 6222 0212 3456 7890 128，mail w@example.com") == (
        "卡号 [bank-card]，mail [email]"
    )
    assert scrub("id 110101199003071234") == "id [id-number]"


async def test_readyz_runs_plpgsql(client: httpx.AsyncClient, conn) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    lang = (
        await conn.execute(
            text(
                "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
                "WHERE p.proname = 'ops_ready'"
            )
        )
    ).scalar_one()
    assert lang == "plpgsql"
    ready = (await conn.execute(text("SELECT ops_ready()"))).scalar_one()
    assert ready["standby"] is False and ready["postgis"].startswith("3.")

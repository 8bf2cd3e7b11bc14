"""Webhooks: outbox → signed delivery to a real local HTTP receiver, retries with backoff,
failing deliveries visible to administrators, subscriptions scoped to the department."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import orjson
import pytest
from sqlalchemy import text

from app.events.webhooks import backoff_seconds, deliver_due, verify
from tests.factories import Loop
from tests.factories import report_case as _report
from tests.helpers import problem


class Receiver:
    """A department's system on loopback: records requests, fails the first `fail` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                code = 500 if len(outer.requests) <= outer.fail else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _local_receivers(monkeypatch):
    """These tests' receivers listen on loopback: allowed by the setting for local development."""
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)


@pytest.fixture
def receiver():
    r = Receiver(fail=1)
    yield r
    r.close()


def _dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/nobody"


async def test_signed_delivery_with_retry(anon, as_user, conn, session, receiver) -> None:
    r = await anon.post(
        "/api/v1/webhooks",
        headers=as_user("dept"),
        json={"url": receiver.url, "event_types": ["case.dispatch", "case.overdue"]},
    )
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["secret"].startswith("whsec_")
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    async with httpx.AsyncClient(timeout=5) as client:
        first = await deliver_due(session, client, now=now)
        assert first == {"sent": 0, "failed": 1}
        assert (await deliver_due(session, client, now=now + timedelta(seconds=5)))["sent"] == 0
        again = await deliver_due(
            session, client, now=now + timedelta(seconds=backoff_seconds(1) + 1)
        )
        assert again == {"sent": 1, "failed": 0}
        assert (await deliver_due(session, client, now=now + timedelta(hours=1))) == {
            "sent": 0,
            "failed": 0,
        }
    assert len(receiver.requests) == 2
    ids = {h["Wangge-Event-Id"] for h, _ in receiver.requests}
    assert len(ids) == 1  # the same event, de-duplicable by its id
    for headers, body in receiver.requests:
        assert verify(sub["secret"], headers["Wangge-Signature"], body)
        assert not verify("whsec_wrong", headers["Wangge-Signature"], body)
        event = orjson.loads(body)
        assert event["type"] == "case.dispatch" and event["case_id"] == loop.id
        assert event["at"].endswith("+08:00")
    listed = (await anon.get("/api/v1/webhooks", headers=as_user("dept"))).json()
    assert listed[0]["delivered"] == 1 and listed[0]["failing"] == 0
    assert "secret" not in listed[0]


async def test_failing_deliveries_and_scope(anon, as_user, client, conn, session) -> None:
    zjj = (await conn.execute(text("SELECT id FROM departments WHERE code = 'ZJJ'"))).scalar()
    problem(
        await anon.post(
            "/api/v1/webhooks",
            headers=as_user("dept"),
            json={"url": "http://127.0.0.1/x", "department_id": zjj},
        ),
        403,
        "forbidden",
    )
    problem(
        await anon.post("/api/v1/webhooks", headers=as_user("dept"), json={"url": "not a url"}),
        422,
        "validation_error",
    )
    problem(
        await anon.post(
            "/api/v1/webhooks", headers=as_user("worker"), json={"url": "http://127.0.0.1/x"}
        ),
        403,
        "forbidden",
    )
    sub = (
        await anon.post("/api/v1/webhooks", headers=as_user("dept"), json={"url": _dead_url()})
    ).json()
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    async with httpx.AsyncClient(timeout=2) as http:
        for i in range(3):
            await deliver_due(session, http, now=now + timedelta(hours=2 * i))
    failing = (await client.get("/api/v1/webhooks/failing")).json()
    mine = [f for f in failing if f["subscription_id"] == sub["id"]]
    assert mine and mine[0]["attempts"] == 3 and "ConnectError" in mine[0]["last_error"]
    problem(await anon.get("/api/v1/webhooks/failing", headers=as_user("dept")), 403, "forbidden")
    problem(
        await anon.delete(f"/api/v1/webhooks/{sub['id']}", headers=as_user("dept2")),
        404,
        "not_found",
    )
    assert (
        await anon.delete(f"/api/v1/webhooks/{sub['id']}", headers=as_user("dept"))
    ).status_code == 204


def test_signature_rejects_old_timestamps() -> None:
    from app.events.webhooks import sign

    h = sign("whsec_x", 1_000, b"{}")
    assert verify("whsec_x", h, b"{}", now=1_100)
    assert not verify("whsec_x", h, b"{}", now=10_000)
    assert not verify("whsec_x", h, b'{"a":1}', now=1_100)
    assert not verify("whsec_x", "garbage", b"{}")

"""Bug 8 of issue 16: webhook subscriptions accepted unknown event types and loopback/private
addresses (SSRF), and a department naming another department got "部门不存在" although it exists.
Here the setting for local receivers is off (as in production)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.helpers import problem

ROOT = Path(__file__).resolve().parents[2]


async def _subscribe(anon, as_user, who: str = "dept", **body):
    return await anon.post("/api/v1/webhooks", headers=as_user(who), json=body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
    ],
)
async def test_non_public_targets_are_refused(anon, as_user, url) -> None:
    body = problem(await _subscribe(anon, as_user, url=url), 422, "validation_error")
    assert body["field"] == "url", body


async def test_an_unresolvable_host_is_refused(anon, as_user) -> None:
    body = problem(
        await _subscribe(anon, as_user, url="https://no-such-host.invalid/hook"),
        422,
        "validation_error",
    )
    assert body["field"] == "url" and "无法解析" in body["detail"]


async def test_a_public_address_is_accepted(anon, as_user) -> None:
    r = await _subscribe(
        anon, as_user, url="https://93.184.216.34/hook", event_types=["case.dispatch"]
    )
    assert r.status_code == 201, r.text


async def test_unknown_event_types_are_refused(anon, as_user) -> None:
    body = problem(
        await _subscribe(
            anon,
            as_user,
            url="https://93.184.216.34/hook",
            event_types=["case.dispatch", "case.nope"],
        ),
        422,
        "validation_error",
    )
    assert body["field"] == "event_types" and "case.nope" in body["errors"][0]["message"]


async def test_another_departments_id_is_403_and_an_unknown_one_404(anon, as_user, conn) -> None:
    zjj = (await conn.execute(text("SELECT id FROM departments WHERE code = 'ZJJ'"))).scalar()
    url = "https://93.184.216.34/hook"
    body = problem(await _subscribe(anon, as_user, url=url, department_id=zjj), 403, "forbidden")
    assert "部门不存在" not in body["detail"] and body["field"] == "department_id"
    missing = (await conn.execute(text("SELECT max(id) + 1000 FROM departments"))).scalar()
    for who in ("dept", "admin"):
        body = problem(
            await _subscribe(anon, as_user, who, url=url, department_id=missing), 404, "not_found"
        )
        assert body["field"] == "department_id"
    r = await _subscribe(anon, as_user, "admin", url=url, department_id=zjj)
    assert r.status_code == 201, r.text


async def test_delivery_refuses_a_name_that_now_points_inside(anon, as_user, conn, session) -> None:
    """Checked again before each delivery: a subscription stored with a name that later
    resolves to loopback is not sent."""
    import httpx

    from app.events.webhooks import deliver_due
    from tests.api.test_loop import Loop, _report

    dept = (await conn.execute(text("SELECT id FROM departments WHERE code = 'CGJ'"))).scalar()
    await conn.execute(
        text(
            "INSERT INTO webhook_subscriptions (department_id, url, secret, event_types) "
            "VALUES (:d, 'http://localhost:9/hook', 'whsec_x', '{}')"
        ),
        {"d": dept},
    )
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    async with httpx.AsyncClient(timeout=2) as client:
        did = await deliver_due(session, client, now=now)
    assert did["sent"] == 0 and did["failed"] >= 1
    errors = list(
        (
            await conn.execute(
                text(
                    "SELECT d.last_error FROM webhook_deliveries d "
                    "JOIN webhook_subscriptions s ON s.id = d.subscription_id "
                    "WHERE s.url = 'http://localhost:9/hook'"
                )
            )
        ).scalars()
    )
    assert errors and all(e.startswith("refused:") for e in errors)


def test_every_emitted_type_is_in_the_catalogue() -> None:
    """The literal types the code emits (emit(...), emit_community(...), INSERT INTO
    event_intents ... 'x.y') and the loop's case.<action> are all subscribable."""
    from app.events.webhooks.catalogue import event_types

    known = event_types()
    found: set[str] = set()
    prefixes: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(
                node.func, "id", getattr(node.func, "attr", "")
            ) in (
                "emit",
                "emit_community",
            ):
                arg = node.args[1] if len(node.args) > 1 else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                elif isinstance(arg, ast.BinOp) and isinstance(arg.left, ast.Constant):
                    prefixes.add(str(arg.left.value))
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "event_intents" in node.value
            ):
                found |= set(re.findall(r"'((?:case|community|calendar)\.[a-z_]+)'", node.value))
    assert found and prefixes
    assert found <= known, found - known
    for prefix in prefixes:
        assert any(t.startswith(prefix) for t in known), prefix
    assert {"case.dispatch", "case.sign_in", "case.overdue", "case.reported"} <= known

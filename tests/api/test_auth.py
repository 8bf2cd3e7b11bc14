"""Login, refresh rotation and reuse detection, logout, lockout, disabling, idle expiry, masking,
the audit log and its hash chain."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from sqlalchemy import text

from tests.helpers import problem

PASSWORD = "Wangge#2026"


async def login(c: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await c.post("/api/v1/auth/token", data={"username": username, "password": password})


async def audit_actions(conn, username: str) -> list[str]:
    rows = await conn.execute(
        text("SELECT action FROM audit_log WHERE actor = :u ORDER BY id"), {"u": username}
    )
    return list(rows.scalars())


async def test_login_me_and_logout(anon: httpx.AsyncClient, conn) -> None:
    r = await login(anon, "worker")
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "bearer" and tok["expires_in"] == 900
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    me = (await anon.get("/api/v1/me", headers=h)).json()
    assert me["username"] == "worker"
    [post] = me["posts"]
    assert post["role"] == "grid_worker" and post["worker_type"] == "full_time"
    assert [g["code"] for g in post["grids"]] == ["360602001001001", "360602001001002"]
    assert (await anon.post("/api/v1/auth/logout", headers=h)).status_code == 204
    problem(await anon.get("/api/v1/me", headers=h), 401, "invalid_token")
    problem(
        await anon.post("/api/v1/auth/refresh", json={"refresh_token": tok["refresh_token"]}),
        401,
        "session_expired",
    )
    assert {"login", "logout"} <= set(await audit_actions(conn, "worker"))


async def test_wrong_password_and_unknown_user(anon: httpx.AsyncClient, conn) -> None:
    problem(await login(anon, "worker", "nope"), 401, "invalid_credentials")
    problem(await login(anon, "nobody", "nope"), 401, "invalid_credentials")
    problem(await anon.get("/api/v1/me"), 401, "unauthenticated")
    problem(
        await anon.get("/api/v1/me", headers={"Authorization": "Bearer x.y.z"}),
        401,
        "invalid_token",
    )
    actions = await conn.execute(
        text(
            "SELECT action, detail->>'reason' FROM audit_log WHERE action = 'login_failed' "
            "AND actor IN ('worker', 'nobody') ORDER BY id"
        )
    )
    assert [tuple(a) for a in actions] == [
        ("login_failed", "bad_password"),
        ("login_failed", "unknown_user"),
    ]


async def test_lockout_after_five_failures_and_unlock(anon, client, conn, as_user) -> None:
    for _ in range(4):
        problem(await login(anon, "worker2", "bad-password"), 401, "invalid_credentials")
    problem(await login(anon, "worker2", "bad-password"), 401, "invalid_credentials")
    body = problem(await login(anon, "worker2"), 403, "account_locked")
    assert "分钟" in body["detail"]
    assert int((await login(anon, "worker2")).headers["retry-after"]) > 800
    assert "account_locked" in await audit_actions(conn, "worker2")
    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker2'"))).scalar()
    r = await client.patch(f"/api/v1/users/{uid}", json={"unlock": True})
    assert r.status_code == 200 and r.json()["locked_until"] is None
    assert (await login(anon, "worker2")).status_code == 200


async def test_lock_expires_by_itself(anon, conn) -> None:
    await conn.execute(
        text("UPDATE users SET locked_until = now() - interval '1 second' WHERE username = 'dept2'")
    )
    assert (await login(anon, "dept2")).status_code == 200


async def test_refresh_rotation_and_reuse_detection(anon: httpx.AsyncClient, conn) -> None:
    first = (await login(anon, "street")).json()
    second = await anon.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    third = (
        await anon.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).json()
    # The stolen first token comes back: the whole chain dies.
    problem(
        await anon.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}),
        401,
        "token_reused",
    )
    problem(
        await anon.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}),
        401,
        "session_expired",
    )
    h = {"Authorization": f"Bearer {third['access_token']}"}
    problem(await anon.get("/api/v1/me", headers=h), 401, "invalid_token")
    assert "refresh_token_reused" in set(
        (await conn.execute(text("SELECT action FROM audit_log"))).scalars()
    )
    problem(
        await anon.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43}),
        401,
        "invalid_token",
    )


async def test_idle_session_expires(anon: httpx.AsyncClient, conn) -> None:
    tok = (await login(anon, "centre")).json()
    await conn.execute(
        text(
            "UPDATE auth_sessions SET last_seen_at = now() - interval '31 minutes' "
            "WHERE user_id = (SELECT id FROM users WHERE username = 'centre')"
        )
    )
    problem(
        await anon.post("/api/v1/auth/refresh", json={"refresh_token": tok["refresh_token"]}),
        401,
        "session_expired",
    )


async def test_expired_and_forged_access_tokens(anon: httpx.AsyncClient, conn) -> None:
    from app.config import get_settings

    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'admin'"))).scalar()
    now = int(time.time())
    claims = {"sub": str(uid), "sid": str(uuid.uuid4()), "typ": "access", "iat": now - 3600}
    expired = jwt.encode({**claims, "exp": now - 60}, get_settings().signing_key, algorithm="HS256")
    forged = jwt.encode(
        {**claims, "exp": now + 600}, "another-key-another-key-another-key!", algorithm="HS256"
    )
    for t in (expired, forged):
        problem(
            await anon.get("/api/v1/me", headers={"Authorization": f"Bearer {t}"}),
            401,
            "invalid_token",
        )


async def test_disabled_user_stops_within_the_cache_window(anon, client, conn, monkeypatch) -> None:
    from app.auth import policy

    tok = (await login(anon, "community")).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    assert (await anon.get("/api/v1/me", headers=h)).status_code == 200  # now cached
    # Another replica disables the user: this process is not told, its cache still answers...
    await conn.execute(text("UPDATE users SET is_active = false WHERE username = 'community'"))
    assert (await anon.get("/api/v1/me", headers=h)).status_code == 200
    # ...until the cache entry is older than auth_cache_seconds (30 s, at most 60).
    later = time.monotonic() + policy.get_settings().auth_cache_seconds + 1
    monkeypatch.setattr(policy.time, "monotonic", lambda: later)
    problem(await anon.get("/api/v1/me", headers=h), 401, "invalid_token")


async def test_admin_disable_is_immediate_here(anon, client, conn) -> None:
    tok = (await login(anon, "leader")).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    assert (await anon.get("/api/v1/me", headers=h)).status_code == 200
    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'leader'"))).scalar()
    r = await client.patch(f"/api/v1/users/{uid}", json={"is_active": False})
    assert r.json()["is_active"] is False
    problem(await anon.get("/api/v1/me", headers=h), 401, "invalid_token")
    problem(await login(anon, "leader"), 403, "account_disabled")


async def test_demo_accounts_refused_in_production(anon, monkeypatch) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "env", "production")
    monkeypatch.setattr(get_settings(), "secret_key", "x" * 40)
    problem(await login(anon, "worker"), 403, "demo_account_refused")


async def test_user_admin_password_rules_and_masking(client, anon, conn, as_user) -> None:
    new = {
        "username": "zhang.wei",
        "display_name": "张伟",
        "mobile": "13812341234",
        "posts": [
            {
                "role": "grid_worker",
                "worker_type": "part_time",
                "grid_ids": [
                    (
                        await conn.execute(
                            text("SELECT id FROM grids WHERE code = '360602001001003'")
                        )
                    ).scalar()
                ],
                "work_phone": "0701-6200001",
            }
        ],
    }
    for weak, code in (
        ("short1A!", "password_too_short"),
        ("alllowercaseletters", "password_too_simple"),
        ("Zhang.Wei#2026x", "password_contains_username"),
    ):
        body = problem(
            await client.post("/api/v1/users", json={**new, "password": weak}), 422, "weak_password"
        )
        assert code in [e["code"] for e in body["errors"]]
    r = await client.post("/api/v1/users", json={**new, "password": "Grid-Worker-2026"})
    assert r.status_code == 201, r.text
    u = r.json()
    assert u["mobile"] == "138****1234"
    problem(
        await client.post("/api/v1/users", json={**new, "password": "Grid-Worker-2026"}),
        409,
        "conflict",
    )
    revealed = (await client.get(f"/api/v1/users/{u['id']}", params={"reveal_pii": True})).json()
    assert revealed["mobile"] == "13812341234"
    viewed = (
        await conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'pii_viewed' AND object_id = :id"),
            {"id": str(u["id"])},
        )
    ).scalar()
    assert viewed == 1
    listed = (await client.get("/api/v1/users", params={"q": "zhang"})).json()
    assert listed["items"][0]["mobile"] == "138****1234"
    problem(await anon.get(f"/api/v1/users/{u['id']}", headers=as_user("centre")), 403, "forbidden")
    tok = (await login(anon, "zhang.wei", "Grid-Worker-2026")).json()
    me = (
        await anon.get("/api/v1/me", headers={"Authorization": f"Bearer {tok['access_token']}"})
    ).json()
    assert me["posts"][0]["worker_type"] == "part_time"
    # bad posts
    body = problem(
        await client.post(
            "/api/v1/users",
            json={
                "username": "x1",
                "display_name": "x",
                "password": "Grid-Worker-2026",
                "posts": [
                    {
                        "role": "community",
                        "area_id": (
                            await conn.execute(
                                text("SELECT id FROM areas WHERE code = '360602001000'")
                            )
                        ).scalar(),
                    }
                ],
            },
        ),
        422,
        "validation_error",
    )
    assert body["field"] == "posts.0.area_id"


async def test_posts_and_roster_on_the_card(client, anon, conn) -> None:
    grid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = '360602001001001'"))
    ).scalar()
    card = (await anon.get(f"/api/v1/grids/{grid}/card")).json()
    names = [s["name"] for s in card["staff"]]
    assert "立新社区网格长" in names and "立新社区网格员" in names
    assert card["staff"][0]["role"] == "grid_leader"
    assert all(s["work_phone"] for s in card["staff"])
    roster = (await client.get(f"/api/v1/grids/{grid}/staff")).json()
    assert {m["name"] for m in roster} == set(names)
    worker = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))).scalar()
    posts = (await client.get(f"/api/v1/users/{worker}")).json()["posts"]
    r = await client.delete(f"/api/v1/users/{worker}/posts/{posts[0]['id']}")
    assert r.status_code == 204
    card = (await anon.get(f"/api/v1/grids/{grid}/card")).json()
    assert "立新社区网格员" not in [s["name"] for s in card["staff"]]


async def test_audit_log_is_append_only_and_chained(client, conn) -> None:
    r = await client.get("/api/v1/audit/verify")
    assert r.json()["ok"] is True, r.json()
    await client.get("/api/v1/users/999999")  # anything; then write a few rows
    await conn.execute(
        text(
            "INSERT INTO audit_log (action, detail) VALUES ('test_a', '{}'),"
            " ('test_b', '{\"x\": 1}')"
        )
    )
    with pytest.raises(Exception, match="append-only"):
        async with conn.begin_nested():
            await conn.execute(
                text("UPDATE audit_log SET action = 'edited' WHERE action = 'test_a'")
            )
    with pytest.raises(Exception, match="append-only"):
        async with conn.begin_nested():
            await conn.execute(text("DELETE FROM audit_log WHERE action = 'test_a'"))
    assert (await client.get("/api/v1/audit/verify")).json()["ok"] is True
    # A superuser bypassing the triggers edits a row: the chain shows it.
    await conn.execute(text("SET LOCAL session_replication_role = replica"))
    await conn.execute(text("UPDATE audit_log SET detail = '{\"x\": 2}' WHERE action = 'test_b'"))
    await conn.execute(text("SET LOCAL session_replication_role = origin"))
    report = (await client.get("/api/v1/audit/verify")).json()
    bad_id = (await conn.execute(text("SELECT id FROM audit_log WHERE action = 'test_b'"))).scalar()
    assert report["ok"] is False
    assert report["broken"] == [{"id": bad_id, "hash_ok": False, "link_ok": True}]
    listed = (await client.get("/api/v1/audit", params={"action": "test_b"})).json()
    assert listed["total"] == 1 and listed["items"][0]["at"].endswith("+08:00")


async def test_departments_registry(client, anon, as_user) -> None:
    listed = (await anon.get("/api/v1/departments", headers=as_user("worker"))).json()
    assert {"区城市管理局", "区住房和城乡建设局"} <= {d["name"] for d in listed}
    r = await client.post("/api/v1/departments", json={"code": "LYJ", "name": "区林业局"})
    assert r.status_code == 201
    problem(
        await client.post("/api/v1/departments", json={"code": "LYJ", "name": "x"}),
        409,
        "code_exists",
    )
    r = await client.patch(f"/api/v1/departments/{r.json()['id']}", json={"phone": "0701-1"})
    assert r.json()["phone"] == "0701-1"
    problem(
        await anon.post(
            "/api/v1/departments", json={"code": "X", "name": "x"}, headers=as_user("centre")
        ),
        403,
        "forbidden",
    )


def test_masking() -> None:
    from app.pii import mask_id_number, mask_phone

    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone(None) is None
    assert mask_id_number("36060219800101123X") == "360602********123X"


async def test_cli_create_user_and_verify_audit(engine) -> None:
    import asyncio

    from tests.api.test_import import _cli

    try:
        r = await asyncio.to_thread(
            _cli,
            "create-user",
            "cli.admin",
            "--role",
            "admin",
            "--name",
            "命令行管理员",
            WANGGE_NEW_PASSWORD="Cli-Admin-2026!",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        r = await asyncio.to_thread(
            _cli, "create-user", "cli.weak", "--role", "admin", WANGGE_NEW_PASSWORD="weak"
        )
        assert r.returncode == 1 and "weak_password" in r.stdout
        r = await asyncio.to_thread(_cli, "verify-audit")
        assert r.returncode == 0 and "intact" in r.stdout, r.stdout + r.stderr
    finally:
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM users WHERE username = 'cli.admin'"))


async def test_a_verified_token_still_expires_and_a_forged_one_is_refused(anon, tokens) -> None:
    """Access tokens are verified once per process and then only their expiry is checked
    (app.auth.tokens._VERIFIED): a cached token stops working at its `exp`, a token with one
    character of its signature changed is verified afresh (and refused), and so is a token
    signed with another key."""
    import asyncio
    import time as _time
    import uuid as _uuid

    from app.auth import tokens as t
    from app.config import get_settings
    from app.errors import ApiError

    good = tokens["worker"]
    assert (
        await anon.get("/api/v1/me", headers={"Authorization": f"Bearer {good}"})
    ).status_code == 200
    assert good in t._VERIFIED
    forged = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    r = await anon.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert forged not in t._VERIFIED

    now = int(_time.time())
    sid = _uuid.uuid4()
    short = jwt.encode(
        {"sub": "1", "sid": str(sid), "iat": now, "exp": now + 2, "typ": "access"},
        get_settings().signing_key,
        algorithm=t.ALGORITHM,
    )
    assert t.decode_access_token(short) == (1, sid)
    assert short in t._VERIFIED
    await asyncio.sleep(now + 2.05 - _time.time())  # past its exp, in real time
    with pytest.raises(ApiError) as e:
        t.decode_access_token(short)
    assert e.value.code == "invalid_token" and short not in t._VERIFIED

    other = jwt.encode(
        {"sub": "1", "sid": str(sid), "iat": now, "exp": now + 600, "typ": "access"},
        "another-key-of-at-least-thirty-two-bytes!",
        algorithm=t.ALGORITHM,
    )
    with pytest.raises(ApiError):
        t.decode_access_token(other)

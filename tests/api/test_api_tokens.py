"""Issue 22, GIS analysts: personal API tokens (scoped, read-only, revocable, audited, with an
expiry) as a bearer header, and their signed URL prefix for clients that cannot send headers
(QGIS vector tile layers): the map only, every OGC link keeping the prefix, nothing in logs."""

from __future__ import annotations

from typing import Any

import mercantile
from sqlalchemy import text

from tests.factories import insert_case, point_in_grid
from tests.helpers import problem
from tests.ops.test_observability import captured_logs

GRID = "360602001001001"  # the worker's first grid


async def _create(anon: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await anon.post("/api/v1/me/api-tokens", json={"name": "QGIS", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_read_token_reads_what_its_owner_reads_and_writes_nothing(anon, as_user) -> None:
    made = await _create(anon, as_user("street"), scope="read", expires_in_days=30)
    assert made["token"].startswith("wgp_") and made["hint"] == made["token"][:10]
    assert made["scope"] == "read" and made["last_used_at"] is None
    mine = await anon.get("/api/v1/cases?limit=100", headers=as_user("street"))
    via = await anon.get("/api/v1/cases?limit=100", headers=_bearer(made["token"]))
    assert via.status_code == 200, via.text
    assert [c["id"] for c in via.json()["items"]] == [c["id"] for c in mine.json()["items"]]
    assert (await anon.get("/api/v1/me", headers=_bearer(made["token"]))).json()["username"] == (
        "street"
    )
    # read-only: no write of any kind, not even a new token or a revocation
    problem(
        await anon.post("/api/v1/cases", json={}, headers=_bearer(made["token"])),
        403,
        "read_only_token",
    )
    problem(
        await anon.post(
            "/api/v1/me/api-tokens", json={"name": "x"}, headers=_bearer(made["token"])
        ),
        403,
        "read_only_token",
    )
    problem(
        await anon.delete(f"/api/v1/me/api-tokens/{made['id']}", headers=_bearer(made["token"])),
        403,
        "read_only_token",
    )
    listed = (await anon.get("/api/v1/me/api-tokens", headers=as_user("street"))).json()
    assert [t["id"] for t in listed] == [made["id"]]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert listed[0]["last_used_at"] is not None  # stamped on use


async def test_a_map_token_reads_the_map_only(anon, as_user, conn) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    await insert_case(conn, GRID, location=(lon, lat), title="地图令牌")
    made = await _create(anon, as_user("worker"))
    assert made["scope"] == "map"  # the default
    t = mercantile.tile(lon, lat, 14)
    tile = f"/tiles/cases/14/{t.x}/{t.y}.mvt"
    with_jwt = await anon.get(tile, headers=as_user("worker"))
    with_token = await anon.get(tile, headers=_bearer(made["token"]))
    assert with_token.status_code == 200 and with_token.content == with_jwt.content
    assert len(with_token.content) > 0
    items = await anon.get("/ogc/collections/cases/items?limit=5", headers=_bearer(made["token"]))
    assert items.status_code == 200 and items.json()["features"]
    problem(await anon.get("/api/v1/cases", headers=_bearer(made["token"])), 403, "token_scope")


async def test_the_signed_url_prefix_serves_the_map_and_keeps_itself_in_links(
    anon, as_user, conn
) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    for i in range(3):
        await insert_case(conn, GRID, location=(lon, lat), title=f"签名 {i}")
    made = await _create(anon, as_user("worker"), scope="read")
    prefix = made["signed_url_prefix"]
    assert prefix.startswith("http://test/s/wgs_") and made["token"] not in prefix
    path = prefix.removeprefix("http://test")
    t = mercantile.tile(lon, lat, 14)
    tile = await anon.get(f"{path}/tiles/cases/14/{t.x}/{t.y}.mvt")
    assert tile.status_code == 200, tile.text
    assert (
        tile.content
        == (await anon.get(f"/tiles/cases/14/{t.x}/{t.y}.mvt", headers=as_user("worker"))).content
    )
    # TileJSON and OGC write links with the prefix: a client follows them with the same access
    tj = (await anon.get(f"{path}/tiles/cases.json")).json()
    assert tj["tiles"][0].startswith(prefix + "/tiles/cases/")
    page = (await anon.get(f"{path}/ogc/collections/cases/items?limit=1")).json()
    nxt = next(x["href"] for x in page["links"] if x["rel"] == "next")
    assert nxt.startswith(prefix + "/ogc/collections/cases/items")
    second = await anon.get(nxt.removeprefix("http://test"))
    assert second.status_code == 200 and second.json()["features"]
    assert second.json()["features"][0]["id"] != page["features"][0]["id"]
    # a signed URL is the map only, even for a `read` token, and only for reading
    problem(await anon.get(f"{path}/api/v1/cases"), 404, "route_not_found")
    credential = path.removeprefix("/s/")
    problem(await anon.get("/api/v1/cases", headers=_bearer(credential)), 403, "token_scope")
    assert (await anon.post(f"{path}/tiles/cases.json")).status_code in (404, 405)
    # forged: the same id with another signature
    forged = credential[:-6] + ("000000" if not credential.endswith("000000") else "111111")
    problem(await anon.get(f"/s/{forged}/tiles/cases.json"), 401, "invalid_token")


async def test_revoked_expired_and_disabled_tokens_stop(anon, as_user, conn) -> None:
    a = await _create(anon, as_user("worker"))
    b = await _create(anon, as_user("worker"))
    path = a["signed_url_prefix"].removeprefix("http://test")
    assert (await anon.get(f"{path}/tiles/cases.json")).status_code == 200
    assert (await anon.get("/tiles/cases.json", headers=_bearer(a["token"]))).status_code == 200
    r = await anon.delete(f"/api/v1/me/api-tokens/{a['id']}", headers=as_user("worker"))
    assert r.status_code == 204
    problem(await anon.get("/tiles/cases.json", headers=_bearer(a["token"])), 401, "invalid_token")
    problem(await anon.get(f"{path}/tiles/cases.json"), 401, "invalid_token")
    again = await anon.delete(f"/api/v1/me/api-tokens/{a['id']}", headers=as_user("worker"))
    assert again.status_code == 204  # revoking twice changes nothing
    # another person's token is not found, like one that does not exist
    other = await anon.delete(f"/api/v1/me/api-tokens/{b['id']}", headers=as_user("street"))
    nowhere = await anon.delete(
        "/api/v1/me/api-tokens/00000000-0000-4000-8000-000000000000", headers=as_user("street")
    )
    problem(other, 404, "not_found")
    assert problem(nowhere, 404, "not_found")["detail"] == other.json()["detail"]
    assert (await anon.get("/tiles/cases.json", headers=_bearer(b["token"]))).status_code == 200
    listed = (await anon.get("/api/v1/me/api-tokens", headers=as_user("worker"))).json()
    assert {t["id"]: t["revoked_at"] is not None for t in listed} == {a["id"]: True, b["id"]: False}

    from app.auth.policy import token_cache

    await conn.execute(
        text("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": b["id"]},
    )
    token_cache.clear()
    problem(await anon.get("/tiles/cases.json", headers=_bearer(b["token"])), 401, "invalid_token")

    c = await _create(anon, as_user("worker"))
    await conn.execute(text("UPDATE users SET is_active = false WHERE username = 'worker'"))
    token_cache.clear()
    problem(await anon.get("/tiles/cases.json", headers=_bearer(c["token"])), 401, "invalid_token")
    audit = (
        await conn.execute(
            text(
                "SELECT action, object_id FROM audit_log WHERE object_type = 'api_token' "
                "AND object_id = ANY(:ids) ORDER BY id"
            ),
            {"ids": [a["id"], b["id"], c["id"]]},
        )
    ).all()
    assert [(x.action, x.object_id) for x in audit] == [
        ("api_token_created", a["id"]),
        ("api_token_created", b["id"]),
        ("api_token_revoked", a["id"]),
        ("api_token_created", c["id"]),
    ]


async def test_bad_input_and_unknown_tokens(anon, as_user) -> None:
    h = as_user("worker")
    for body, field in (
        ({"name": "x", "scope": "write"}, "scope"),
        ({"name": "x", "expires_in_days": 366}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
        ({"name": ""}, "name"),
    ):
        r = await anon.post("/api/v1/me/api-tokens", json=body, headers=h)
        assert problem(r, 422, "validation_error")["errors"][0]["field"].endswith(field), r.text
    problem(
        await anon.get("/tiles/cases.json", headers=_bearer("wgp_" + "x" * 43)),
        401,
        "invalid_token",
    )
    problem(
        await anon.get("/tiles/cases.json", headers=_bearer("wgs_" + "0" * 72)),
        401,
        "invalid_token",
    )
    problem(await anon.get("/api/v1/me/api-tokens"), 401, "unauthenticated")


async def test_credentials_never_reach_the_logs(anon, as_user, monkeypatch) -> None:
    from app.config import get_settings
    from app.observability.logs import scrub

    monkeypatch.setattr(get_settings(), "access_log", True)
    made = await _create(anon, as_user("worker"))
    path = made["signed_url_prefix"].removeprefix("http://test")
    credential = path.removeprefix("/s/")
    with captured_logs() as buf:
        await anon.get(f"{path}/tiles/cases.json", headers={"X-Request-ID": "signed-1"})
        await anon.get("/tiles/cases.json", headers=_bearer(made["token"]))
        import logging

        logging.getLogger("wangge.test").warning("unhandled error on GET %s/tiles", path)
    out = buf.getvalue()
    assert credential not in out and made["token"] not in out
    assert '"route": "/tiles/cases.json"' in out or '"route":"/tiles/cases.json"' in out
    assert "[credential]" in out
    assert scrub(f"Bearer {made['token']}") == "Bearer [credential]"

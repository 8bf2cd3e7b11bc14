"""The base data over time: key rotation (re-encrypt, the hash still finds), production refusing
the development key, retention (moved away → figures), a deletion request (tombstone, audited),
a visit naming a household and the visit plan that follows from it."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import text

from app.basedata import crypto, retention
from app.config import get_settings
from tests.api.basedata_support import (
    building_id,
    grid_id,
    household,
    id_number,
    resident,
    seed_tags,
)
from tests.helpers import problem


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_rotate_keys_reencrypts_and_search_still_finds(
    anon, as_user, conn, session, monkeypatch
) -> None:
    h = as_user("worker")
    hh = await household(anon, h, await building_id(conn))
    idn = id_number(31)
    p = await resident(anon, h, hh, name="测试轮换", id_number=idn, phone="13700001111")
    new = f"{crypto.DEVELOPMENT_PII_KEY},2:{_key()}"
    monkeypatch.setattr(get_settings(), "pii_keys", new)
    crypto.keyring.cache_clear()
    try:
        counts = await retention.rotate(session)
        assert counts["residents"] >= 1
        row = (
            await conn.execute(
                text("SELECT key_version, id_enc FROM residents WHERE id = :i"), {"i": p["id"]}
            )
        ).one()
        assert row.key_version == 2
        assert crypto.open_sealed(row.id_enc, "id_number", 2) == idn
        # the old key no longer opens it; a changed byte fails (authenticated)
        with pytest.raises(InvalidTag):
            crypto.open_sealed(row.id_enc, "id_number", 1)
        with pytest.raises(InvalidTag):
            crypto.open_sealed(row.id_enc[:-1] + bytes([row.id_enc[-1] ^ 1]), "id_number", 2)
        g = await grid_id(conn)
        found = (
            await anon.get(f"/api/v1/grids/{g}/residents", params={"id_number": idn}, headers=h)
        ).json()
        assert [x["id"] for x in found["items"]] == [p["id"]]
        rv = await anon.post(
            f"/api/v1/residents/{p['id']}/reveal",
            json={"fields": ["phone"], "purpose": "核对联系电话"},
            headers=h,
        )
        assert rv.json()["phone"] == "13700001111"
        assert await retention.rotate(session) == {"residents": 0, "organisations": 0}
    finally:
        crypto.keyring.cache_clear()


def test_production_refuses_the_development_encryption_key(monkeypatch) -> None:
    s = get_settings()
    monkeypatch.setattr(s, "env", "production")
    try:
        for keys, hkey in (
            (None, None),
            (crypto.DEVELOPMENT_PII_KEY, "h" * 40),
            (f"3:{_key()}", None),
        ):
            monkeypatch.setattr(s, "pii_keys", keys)
            monkeypatch.setattr(s, "pii_hash_key", hkey)
            crypto.keyring.cache_clear()
            with pytest.raises(RuntimeError):
                crypto.keyring()
        monkeypatch.setattr(s, "pii_keys", f"3:{_key()}")
        monkeypatch.setattr(s, "pii_hash_key", crypto.DEVELOPMENT_HASH_KEY)
        crypto.keyring.cache_clear()
        with pytest.raises(RuntimeError):
            crypto.keyring()
        monkeypatch.setattr(s, "pii_hash_key", "h" * 40)
        crypto.keyring.cache_clear()
        assert crypto.keyring().current == 3
    finally:
        crypto.keyring.cache_clear()


async def test_moved_away_reduced_to_figures(anon, as_user, conn, session) -> None:
    h = as_user("worker")
    hh = await household(anon, h, await building_id(conn))
    p = await resident(anon, h, hh, name="测试迁出", id_number=id_number(41), phone="13600002222")
    r = await anon.patch(f"/api/v1/residents/{p['id']}", json={"status": "moved_away"}, headers=h)
    assert r.status_code == 200 and r.json()["moved_at"], r.text
    days = get_settings().basedata_retention_days
    assert (await retention.tick(session, datetime.now(UTC)))["reduced_residents"] == 0
    later = datetime.now(UTC) + timedelta(days=days + 1)
    assert (await retention.tick(session, later))["reduced_residents"] == 1
    row = (
        await conn.execute(
            text(
                "SELECT name, id_enc, id_hash, phone_enc, birth_year, reduced_at FROM residents WHERE id = :i"
            ),
            {"i": p["id"]},
        )
    ).one()
    assert row.name is None and row.id_enc is None and row.id_hash is None and row.phone_enc is None
    assert row.birth_year == 1950 and row.reduced_at is not None
    problem(
        await anon.post(
            f"/api/v1/residents/{p['id']}/reveal",
            json={"fields": ["name"], "purpose": "查看原因说明"},
            headers=h,
        ),
        409,
        "person_removed",
    )


async def test_deletion_request_leaves_an_audited_tombstone(anon, as_user, conn) -> None:
    h = as_user("worker")
    hh = await household(anon, h, await building_id(conn))
    p = await resident(anon, h, hh, name="测试删除", id_number=id_number(51))
    problem(
        await anon.post(
            f"/api/v1/residents/{p['id']}/erase", json={"reason": "本人申请删除"}, headers=h
        ),
        403,
        "forbidden",
    )
    r = await anon.post(
        f"/api/v1/residents/{p['id']}/erase",
        json={"reason": "本人书面申请删除个人信息"},
        headers=as_user("community"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["resident_id"] == p["id"]
    problem(await anon.get(f"/api/v1/residents/{p['id']}", headers=h), 404, "not_found")
    left = (
        await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM residents WHERE id = :i) AS r, "
                "(SELECT count(*) FROM household_members WHERE resident_id = :i) AS m, "
                "(SELECT count(*) FROM basedata_tombstones WHERE resident_id = :i) AS ts, "
                "(SELECT count(*) FROM audit_log WHERE action = 'resident_erased' "
                " AND object_id = CAST(:i AS text)) AS a"
            ),
            {"i": p["id"]},
        )
    ).one()
    assert (left.r, left.m, left.ts, left.a) == (0, 0, 1, 1)


async def test_a_visit_names_a_household_and_the_plan_follows(anon, as_user, conn) -> None:
    await seed_tags(conn)
    h = as_user("worker")
    b = await building_id(conn)
    hh = await household(anon, h, b)
    p = await resident(anon, h, hh, name="测试独居", tags=["elderly_alone"])
    plan = (await anon.get("/api/v1/me/visit-plan", headers=h)).json()["items"]
    mine = [x for x in plan if x["household_id"] == hh]
    assert (
        mine and mine[0]["due"] and mine[0]["every_days"] == 7 and mine[0]["last_visit_at"] is None
    )
    r = await anon.post(
        f"/api/v1/buildings/{b}/visits",
        json={"purpose": "care", "resident_id": p["id"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["household_id"] == hh and r.json()["resident_id"] == p["id"]
    plan = (await anon.get("/api/v1/me/visit-plan", headers=h)).json()["items"]
    mine = [x for x in plan if x["household_id"] == hh]
    assert not mine[0]["due"] and mine[0]["last_visit_at"]
    other = await building_id(conn, "360602001001002")
    problem(
        await anon.post(
            f"/api/v1/buildings/{other}/visits",
            json={"purpose": "care", "household_id": hh},
            headers=h,
        ),
        422,
        "validation_error",
    )

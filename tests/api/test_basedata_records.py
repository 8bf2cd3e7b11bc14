"""Base data: houses of buildings, households, residents (encrypted at rest, masked on the way
out, exact search through the keyed hash), organisations, moves with history, derived figures."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.basedata_support import (
    building_id,
    grid_id,
    household,
    id_number,
    resident,
    seed_tags,
)
from tests.helpers import problem


async def test_house_household_resident_encrypted_and_masked(anon, as_user, conn) -> None:
    await seed_tags(conn)
    h = as_user("worker")
    b = await building_id(conn)
    hh = await household(anon, h, b)
    idn = id_number(7)
    p = await resident(
        anon,
        h,
        hh,
        name="测试甲",
        id_number=idn,
        phone="13812345678",
        relation="head",
        tags=["elderly_alone"],
    )
    assert p["name"] == "测试甲" and not p["name_masked"]
    assert p["id_number"] == idn[:6] + "********" + idn[-4:]
    assert p["phone"] == "138****5678"
    assert p["birth_year"] == 1950 and p["gender"] in ("M", "F")
    row = (
        await conn.execute(
            text("SELECT id_enc, phone_enc, id_hash, key_version FROM residents WHERE id = :i"),
            {"i": p["id"]},
        )
    ).one()
    assert idn.encode() not in row.id_enc and b"13812345678" not in row.phone_enc
    assert row.key_version == 1 and len(row.id_hash) == 32
    # exact search by ID number through the keyed hash
    g = await grid_id(conn)
    found = (
        await anon.get(f"/api/v1/grids/{g}/residents", params={"id_number": idn}, headers=h)
    ).json()
    assert [x["id"] for x in found["items"]] == [p["id"]]
    none = (
        await anon.get(
            f"/api/v1/grids/{g}/residents", params={"id_number": id_number(8)}, headers=h
        )
    ).json()
    assert none["items"] == []
    # the household answer lists the member, the house counts the household
    got = (await anon.get(f"/api/v1/households/{hh}", headers=h)).json()
    assert [m["id"] for m in got["members"]] == [p["id"]]


async def test_bad_input_is_a_problem_with_the_field(anon, as_user, conn) -> None:
    await seed_tags(conn)
    h = as_user("worker")
    hh = await household(anon, h, await building_id(conn))
    bad = id_number(1)[:-1] + ("0" if id_number(1)[-1] != "0" else "1")
    body = problem(
        await anon.post(
            f"/api/v1/households/{hh}/residents", json={"name": "甲", "id_number": bad}, headers=h
        ),
        422,
        "invalid_id_number",
    )
    assert body["detail"].endswith("校验位错误")
    problem(
        await anon.post(
            f"/api/v1/households/{hh}/residents", json={"name": "甲", "phone": "12345"}, headers=h
        ),
        422,
        "invalid_phone",
    )
    problem(
        await anon.post(
            f"/api/v1/households/{hh}/residents", json={"name": "甲", "tags": ["nope"]}, headers=h
        ),
        422,
        "unknown_tag",
    )
    # a grid worker may not set a sensitive tag
    problem(
        await anon.post(
            f"/api/v1/households/{hh}/residents",
            json={"name": "甲", "tags": ["corrections"]},
            headers=h,
        ),
        403,
        "sensitive_tag_forbidden",
    )
    # one person, one household: the same ID number again is refused
    await resident(anon, h, hh, name="甲", id_number=id_number(2))
    hh2 = await household(anon, h, await building_id(conn), room="102")
    problem(
        await anon.post(
            f"/api/v1/households/{hh2}/residents",
            json={"name": "乙", "id_number": id_number(2)},
            headers=h,
        ),
        409,
        "duplicate_person",
    )
    b = await building_id(conn)
    problem(
        await anon.post(
            f"/api/v1/buildings/{b}/houses",
            json={"unit": "1", "floor": 1, "room": "101"},
            headers=h,
        ),
        409,
        "house_exists",
    )


async def test_move_keeps_history_and_figures_follow(anon, as_user, conn) -> None:
    await seed_tags(conn)
    h = as_user("worker")
    b = await building_id(conn)
    g = await grid_id(conn)
    typed = (
        await conn.execute(text("SELECT households FROM grids WHERE id = :g"), {"g": g})
    ).scalar()
    before = (await anon.get(f"/api/v1/grids/{g}", headers=h)).json()
    assert before["households_source"] == ("typed" if typed is not None else None)
    hh1 = await household(anon, h, b, "201")
    hh2 = await household(anon, h, b, "202")
    p = await resident(anon, h, hh1, name="测试丙", relation="head")
    await resident(anon, h, hh1, name="测试丁", living=False)
    grid = (await anon.get(f"/api/v1/grids/{g}", headers=h)).json()
    assert grid["households"] == 2 and grid["population"] == 1
    assert grid["households_source"] == "base_data" and grid["population_source"] == "base_data"
    bl = (await anon.get(f"/api/v1/buildings/{b}", headers=h)).json()
    assert bl["households"] == 2 and bl["households_source"] == "base_data"
    r = await anon.post(
        f"/api/v1/residents/{p['id']}/move",
        json={"household_id": hh2, "relation": "head"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["household_id"] == hh2, r.text
    hist = (await anon.get(f"/api/v1/residents/{p['id']}/history", headers=h)).json()
    assert [m["household_id"] for m in hist["households"]] == [hh1, hh2]
    assert hist["households"][0]["to_at"] is not None and hist["households"][1]["to_at"] is None
    assert [c["action"] for c in hist["changes"]] == ["created", "moved"]
    figs = (await anon.get(f"/api/v1/grids/{g}/basedata/figures", headers=as_user("centre"))).json()
    assert figs["households"] == 2 and figs["population"] == 1 and figs["houses"] == 2


async def test_organisation_at_a_building_with_masked_phone(anon, as_user, conn) -> None:
    h = as_user("worker")
    b = await building_id(conn)
    r = await anon.post(
        f"/api/v1/buildings/{b}/organisations",
        json={"name": "测试便利店", "kind": "shop", "phone": "0701-6221234"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["phone"].startswith("070*") and r.json()["phone"].endswith("1234")
    listed = (await anon.get(f"/api/v1/buildings/{b}/organisations", headers=h)).json()
    assert [o["name"] for o in listed["items"]] == ["测试便利店"]

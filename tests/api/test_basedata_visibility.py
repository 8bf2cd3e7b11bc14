"""Who sees what of a person (need-to-know, PIPL): roles × fields, masked or clear, like the route
matrix. One resident of the demo grid with an identity number, a phone, an ordinary tag and a
sensitive one; each role reads it, lists the grid, and reveals (with a purpose, audited)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.basedata_support import building_id, grid_id, household, id_number, seed_tags
from tests.factories import insert_case
from tests.helpers import problem

IDN = id_number(123, born="19400505")
PHONE = "13912348765"
NAME = "演示张三"
MASKED_ID = IDN[:6] + "********" + IDN[-4:]

# role → (reaches the person, name clear, sees the sensitive tag); None = 404 (out of scope)
EXPECTED: dict[str, tuple[bool, bool, bool] | None] = {
    "admin": (True, True, True),
    "centre": (True, False, False),
    "street": (True, True, False),
    "community": (True, True, False),  # sensitive tags have their own role
    "governance": (True, True, True),  # 综治专干 of 立新社区: basedata:sensitive
    "leader": (True, True, False),
    "worker": (True, True, False),
    "worker2": None,
    "dept": None,  # no case it handles names the person
}


async def _person(anon: Any, as_user: Any, conn: Any) -> tuple[int, int]:
    await seed_tags(conn)
    hh = await household(anon, as_user("worker"), await building_id(conn))
    r = await anon.post(
        f"/api/v1/households/{hh}/residents",
        json={
            "name": NAME,
            "id_number": IDN,
            "phone": PHONE,
            "tags": ["elderly_alone", "corrections"],
        },
        headers=as_user("governance"),  # the sensitive tag needs basedata:sensitive
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), hh


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_roles_by_fields(anon, as_user, conn, role) -> None:
    rid, _ = await _person(anon, as_user, conn)
    h = as_user(role)
    want = EXPECTED[role]
    r = await anon.get(f"/api/v1/residents/{rid}", headers=h)
    if want is None:
        problem(r, 404, "not_found")
        problem(
            await anon.post(
                f"/api/v1/residents/{rid}/reveal",
                json={"fields": ["id_number"], "purpose": "核实身份信息"},
                headers=h,
            ),
            404,
            "not_found",
        )
        return
    _, name_clear, sensitive = want
    body = r.json()
    assert r.status_code == 200, r.text
    assert (
        body["name"] == (NAME if name_clear else "演***") and body["name_masked"] is not name_clear
    )
    assert body["id_number"] == MASKED_ID and body["phone"] == "139****8765"
    assert "elderly_alone" in body["tags"]
    assert ("corrections" in body["tags"]) is sensitive
    # the grid's list: the same masking (a department reaches no list)
    g = await grid_id(conn)
    listed = (await anon.get(f"/api/v1/grids/{g}/residents", headers=h)).json()["items"]
    assert [(x["name"], x["id_number"]) for x in listed] == [(body["name"], MASKED_ID)]
    # a reveal: the purpose is required, the fields come clear, the audit log has it
    problem(
        await anon.post(f"/api/v1/residents/{rid}/reveal", json={"fields": ["phone"]}, headers=h),
        422,
        "validation_error",
    )
    rv = await anon.post(
        f"/api/v1/residents/{rid}/reveal",
        json={"fields": ["name", "id_number", "phone"], "purpose": "入户走访核实身份"},
        headers=h,
    )
    assert rv.status_code == 200, rv.text
    assert rv.json() | {"purpose": None} == {
        "id": rid,
        "name": NAME,
        "id_number": IDN,
        "phone": PHONE,
        "purpose": None,
    }
    audit = (
        await conn.execute(
            text(
                "SELECT actor, detail FROM audit_log WHERE action = 'pii_viewed' "
                "AND object_type = 'resident' AND object_id = :id"
            ),
            {"id": str(rid)},
        )
    ).one()
    assert audit.actor == role
    assert audit.detail == {"fields": ["id_number", "name", "phone"], "purpose": "入户走访核实身份"}


async def test_a_department_sees_only_the_persons_its_case_names(anon, as_user, conn) -> None:
    rid, _ = await _person(anon, as_user, conn)
    h = as_user("dept")
    problem(await anon.get(f"/api/v1/residents/{rid}", headers=h), 404, "not_found")
    case_id = await insert_case(conn)
    district = (
        await conn.execute(text("SELECT district_id FROM cases WHERE id = :c"), {"c": case_id})
    ).scalar_one()
    r = await anon.post(
        f"/api/v1/cases/{case_id}/persons", json={"resident_id": rid}, headers=as_user("worker")
    )
    assert r.status_code == 201, r.text
    # named but not dispatched to the department: still nothing
    problem(await anon.get(f"/api/v1/residents/{rid}", headers=h), 404, "not_found")
    await conn.execute(
        text(
            "INSERT INTO case_assignments (case_id, department_id, district_id, role, state, "
            "limits, sign_in_due) SELECT :c, id, :d, 'lead', 'dispatched', '{}'::jsonb, "
            "now() + interval '1 day' FROM departments WHERE code = 'CGJ'"
        ),
        {"c": case_id, "d": district},
    )
    body = (await anon.get(f"/api/v1/residents/{rid}", headers=h)).json()
    assert body["name"] == NAME and body["id_number"] == MASKED_ID
    assert "corrections" not in body["tags"]
    # not the grid's list, not the household's other members' list
    g = await grid_id(conn)
    problem(await anon.get(f"/api/v1/grids/{g}/residents", headers=h), 404, "not_found")
    # once withdrawn, gone again
    await conn.execute(
        text("UPDATE case_assignments SET state = 'withdrawn' WHERE case_id = :c"), {"c": case_id}
    )
    problem(await anon.get(f"/api/v1/residents/{rid}", headers=h), 404, "not_found")


async def test_sensitive_tag_filter_and_figures(anon, as_user, conn) -> None:
    rid, _ = await _person(anon, as_user, conn)
    g = await grid_id(conn)
    problem(
        await anon.get(
            f"/api/v1/grids/{g}/residents", params={"tag": "corrections"}, headers=as_user("worker")
        ),
        403,
        "sensitive_tag_forbidden",
    )
    problem(
        await anon.get(
            f"/api/v1/grids/{g}/residents",
            params={"tag": "corrections"},
            headers=as_user("community"),
        ),
        403,
        "sensitive_tag_forbidden",
    )
    got = (
        await anon.get(
            f"/api/v1/grids/{g}/residents",
            params={"tag": "corrections"},
            headers=as_user("governance"),
        )
    ).json()
    assert [x["id"] for x in got["items"]] == [rid]
    centre = (
        await anon.get(f"/api/v1/grids/{g}/basedata/figures", headers=as_user("centre"))
    ).json()
    assert centre["by_tag"] == {"elderly_alone": 1} and centre["population"] == 1
    community = (
        await anon.get(f"/api/v1/grids/{g}/basedata/figures", headers=as_user("community"))
    ).json()
    assert community["by_tag"] == {"elderly_alone": 1}
    governance = (
        await anon.get(f"/api/v1/grids/{g}/basedata/figures", headers=as_user("governance"))
    ).json()
    assert governance["by_tag"] == {"elderly_alone": 1, "corrections": 1}
    # a worker editing tags keeps the sensitive one it cannot see
    r = await anon.patch(
        f"/api/v1/residents/{rid}", json={"tags": ["disabled"]}, headers=as_user("worker")
    )
    assert r.json()["tags"] == ["disabled"], r.text
    full = (await anon.get(f"/api/v1/residents/{rid}", headers=as_user("governance"))).json()
    assert sorted(full["tags"]) == ["corrections", "disabled"]
    # so does the community's secretary, who has not the role
    r = await anon.patch(
        f"/api/v1/residents/{rid}", json={"tags": ["elderly_alone"]}, headers=as_user("community")
    )
    assert r.json()["tags"] == ["elderly_alone"], r.text
    full = (await anon.get(f"/api/v1/residents/{rid}", headers=as_user("governance"))).json()
    assert sorted(full["tags"]) == ["corrections", "elderly_alone"]


async def test_clear_values_never_logged_nor_in_answers(anon, as_user, conn, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rid, hh = await _person(anon, as_user, conn)
    g = await grid_id(conn)
    b = await building_id(conn)
    h = as_user("admin")
    bodies = [
        (await anon.get(u, headers=h)).text
        for u in (
            f"/api/v1/residents/{rid}",
            f"/api/v1/households/{hh}",
            f"/api/v1/grids/{g}/residents",
            f"/api/v1/residents/{rid}/history",
            f"/api/v1/grids/{g}/basedata/figures",
            f"/api/v1/grids/{g}",
            f"/api/v1/buildings/{b}",
            f"/api/v1/audit?object_type=resident&object_id={rid}",
        )
    ]
    for text_ in [*bodies, caplog.text]:
        assert IDN not in text_ and PHONE not in text_
    history = (await conn.execute(text("SELECT fields::text FROM basedata_changes"))).scalars()
    assert not any(IDN in f or PHONE in f for f in history)


async def test_the_governance_role_is_an_area_post(anon, as_user, conn) -> None:
    """综治专干 (role `governance`) is posted on a community or a street, never on grids; such a
    post on another community sees none of this community's sensitive tags."""
    rid, _ = await _person(anon, as_user, conn)
    admin = as_user("admin")
    areas = dict(
        (
            await conn.execute(
                text(
                    "SELECT level, min(id) FROM areas WHERE level IN ('street', 'district') "
                    "GROUP BY level"
                )
            )
        ).all()
    )
    other = (
        await conn.execute(
            text(
                "SELECT a.id FROM areas a WHERE a.level = 'community' AND a.id <> ("
                "SELECT community_id FROM grids WHERE code = '360602001001001') ORDER BY a.id LIMIT 1"
            )
        )
    ).scalar_one()

    async def create(username: str, post: dict[str, Any]) -> Any:
        return await anon.post(
            "/api/v1/users",
            json={
                "username": username,
                "display_name": "测试综治专干",
                "password": "Governance-2026x",
                "posts": [{"role": "governance", **post}],
            },
            headers=admin,
        )

    problem(await create("gov_district", {"area_id": areas["district"]}), 422, "validation_error")
    problem(await create("gov_grids", {"grid_ids": [await grid_id(conn)]}), 422, "validation_error")
    assert (await create("gov_street", {"area_id": areas["street"]})).status_code == 201
    r = await create("gov_other", {"area_id": other})
    assert r.status_code == 201, r.text
    tok = await anon.post(
        "/api/v1/auth/token", data={"username": "gov_other", "password": "Governance-2026x"}
    )
    assert tok.status_code == 200, tok.text
    h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    problem(await anon.get(f"/api/v1/residents/{rid}", headers=h), 404, "not_found")
    mine = (await anon.get(f"/api/v1/residents/{rid}", headers=as_user("governance"))).json()
    assert "corrections" in mine["tags"]

"""The roles × fields matrix beyond the person's own answers (tests/api/test_basedata_visibility.py):
the grid's ledger export (台账) and a dispute's parties. Each role: reached or not (404), the name
clear or masked, identity number and phone masked always, the sensitive tag only with
`basedata:sensitive`; the dispute's case (矛盾纠纷, a private class) carries no party's name."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.api.basedata_support import building_id, grid_id, household, id_number, seed_tags
from tests.helpers import problem

IDN = id_number(321, born="19450202")
PHONE = "13912340001"
NAME = "演示李四"
MASKED_ID = IDN[:6] + "********" + IDN[-4:]

# role → (name clear, sensitive tag); None = out of reach (404)
EXPECTED: dict[str, tuple[bool, bool] | None] = {
    "admin": (True, True),
    "centre": (False, False),
    "street": (True, False),
    "community": (True, False),  # sensitive tags have their own role
    "governance": (True, True),
    "leader": (True, False),
    "worker": (True, False),
    "worker2": None,
    "dept": None,
}
# the dispute's parties: the roles with disputes:read in scope; a department has not the permission
DISPUTE: dict[str, bool | str | None] = {
    "admin": True,
    "centre": False,
    "street": True,
    "community": True,
    "governance": True,
    "leader": True,
    "worker": True,
    "worker2": None,
    "dept": "forbidden",
}


async def _setup(anon: Any, as_user: Any, conn: Any) -> tuple[int, int]:
    await seed_tags(conn)
    hh = await household(anon, as_user("worker"), await building_id(conn), room="501")
    r = await anon.post(
        f"/api/v1/households/{hh}/residents",
        json={"name": NAME, "id_number": IDN, "phone": PHONE, "tags": ["disabled", "mental"]},
        headers=as_user("governance"),
    )
    assert r.status_code == 201, r.text
    g = await grid_id(conn)
    d = await anon.post(
        f"/api/v1/grids/{g}/disputes",
        json={
            "title": "赡养纠纷",
            "kind": "family",
            "parties": [{"resident_id": r.json()["id"]}, {"name": "测试对方"}],
        },
        headers=as_user("worker"),
    )
    assert d.status_code == 201, d.text
    return g, int(d.json()["id"])


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_export_by_role(anon, as_user, conn, role) -> None:
    g, _ = await _setup(anon, as_user, conn)
    r = await anon.get(
        f"/api/v1/grids/{g}/basedata/export", params={"format": "csv"}, headers=as_user(role)
    )
    want = EXPECTED[role]
    if want is None:
        problem(r, 404, "not_found")
        return
    assert r.status_code == 200, r.text
    assert IDN not in r.text and PHONE not in r.text
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    mine = [x for x in rows if x["身份证号"] == MASKED_ID]
    assert len(mine) == 1, rows
    name_clear, sensitive = want
    assert mine[0]["姓名"] == (NAME if name_clear else "演***")
    assert mine[0]["联系电话"] == "139****0001"
    tags = mine[0]["标签"]
    assert "残疾人" in tags or "disabled" in tags
    assert ("精神障碍" in tags or "mental" in tags) is sensitive


@pytest.mark.parametrize("role", sorted(DISPUTE))
async def test_dispute_parties_by_role(anon, as_user, conn, role) -> None:
    _, did = await _setup(anon, as_user, conn)
    r = await anon.get(f"/api/v1/disputes/{did}", headers=as_user(role))
    want = DISPUTE[role]
    if want is None:
        problem(r, 404, "not_found")
        return
    if want == "forbidden":
        problem(r, 403, "forbidden")
        return
    assert r.status_code == 200, r.text
    names = [p["name"] for p in r.json()["parties"]]
    assert names == ([NAME, "测试对方"] if want else ["演***", "测***"])
    case = await anon.get(f"/api/v1/cases/{r.json()['case_id']}", headers=as_user(role))
    if case.status_code == 200:
        assert NAME not in case.text and "测试对方" not in case.text

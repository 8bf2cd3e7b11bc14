"""A dispute's lifecycle cannot be bypassed through the loop's generic case actions (issue 21):
the dispute's case (`cases.managed_by = 'dispute'`, `app.cases.managed`) neither offers nor runs
on_spot, reject, evaluate or reopen, and cannot be closed as a duplicate; an ordinary case of the
same 矛盾纠纷 category still can. Refusals are problem+json `dispute_case_action` (409)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.api.basedata_support import grid_id
from tests.factories import Loop, report_case
from tests.helpers import problem

AGREED = {"outcome": "agreed", "agreement": "晚十点后不再装修", "signed_by": "双方当事人"}


async def _dispute(anon: Any, as_user: Any, conn: Any, title: str = "装修噪音纠纷") -> dict:
    r = await anon.post(
        f"/api/v1/grids/{await grid_id(conn)}/disputes",
        json={"title": title, "kind": "neighbour", "parties": [{"name": "甲"}, {"name": "乙"}]},
        headers=as_user("worker"),
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _case(anon: Any, as_user: Any, case_id: int, who: str) -> tuple[dict, str]:
    r = await anon.get(f"/api/v1/cases/{case_id}", headers=as_user(who))
    assert r.status_code == 200, r.text
    return r.json(), r.headers["etag"]


async def _act(
    anon: Any, as_user: Any, case_id: int, who: str, action: str, body: dict | None = None
) -> Any:
    _, etag = await _case(anon, as_user, case_id, who)
    return await anon.post(
        f"/api/v1/cases/{case_id}/actions/{action}",
        json=body or {},
        headers={**as_user(who), "If-Match": etag},
    )


async def test_a_registered_dispute_case_offers_neither_on_spot_nor_reject(
    anon, as_user, conn
) -> None:
    d = await _dispute(anon, as_user, conn)
    case, _ = await _case(anon, as_user, d["case_id"], "worker")
    assert case["status"] == "registered"
    assert "on_spot" not in case["allowed_actions"]
    community, _ = await _case(anon, as_user, d["case_id"], "community")
    assert "reject" not in community["allowed_actions"]
    assert "whistle" in community["allowed_actions"]  # 协调联动 stays the loop's
    street, _ = await _case(anon, as_user, d["case_id"], "street")
    assert "dispatch" in street["allowed_actions"] and "reject" not in street["allowed_actions"]

    bad = problem(
        await _act(anon, as_user, d["case_id"], "worker", "on_spot", {"note": "已劝解"}),
        409,
        "dispute_case_action",
    )
    assert "矛盾纠纷" in bad["detail"] and "自行处置" in bad["detail"], bad
    assert bad["managed_by"] == "dispute" and "on_spot" not in bad["allowed_actions"]
    assert bad["case_status"] == "registered"
    bad = problem(
        await _act(anon, as_user, d["case_id"], "community", "reject", {"reason": "无效"}),
        409,
        "dispute_case_action",
    )
    assert "不予立案" in bad["detail"]
    # in English too, the same code
    _, etag = await _case(anon, as_user, d["case_id"], "worker")
    r = await anon.post(
        f"/api/v1/cases/{d['case_id']}/actions/on_spot",
        json={},
        headers={**as_user("worker"), "If-Match": etag, "Accept-Language": "en"},
    )
    en = problem(r, 409, "dispute_case_action")
    assert "dispute" in en["detail"] and "on_spot" in en["detail"]
    # nothing changed: the dispute goes on through mediation
    case, _ = await _case(anon, as_user, d["case_id"], "worker")
    assert case["status"] == "registered" and case["version"] == 2
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions", json=AGREED, headers=as_user("worker")
    )
    assert r.status_code == 200 and r.json()["status"] == "follow_up", r.text


async def test_an_ordinary_case_of_the_same_category_still_offers_them(anon, as_user, conn) -> None:
    """The guard knows the case belongs to a dispute (its mark), not its category."""
    c = await report_case(anon, as_user, conn, category="MD-01")
    loop = Loop(anon, as_user, c)
    await loop.do("community", "register", {})
    assert "on_spot" in (await loop.get("worker"))["allowed_actions"]
    assert "reject" in (await loop.get("community"))["allowed_actions"]
    done = await loop.do("worker", "on_spot", {"note": "已劝解"})
    assert done["status"] == "feedback"


async def test_a_departments_result_does_not_close_the_dispute(anon, as_user, conn) -> None:
    """Dispatched to a department (协调联动): it signs in, feeds back, the worker verifies; the
    loop's evaluation would close the case, so it is neither offered nor run: the dispute closes
    it after the follow-ups."""
    d = await _dispute(anon, as_user, conn, "占道经营纠纷")
    case, etag = await _case(anon, as_user, d["case_id"], "street")
    loop = Loop(anon, as_user, case)
    loop.etag = etag
    cgj = await _dept(conn, "CGJ")
    await loop.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
    await loop.do("dept", "sign_in", {})
    await loop.do("dept", "feedback", {"note": "已协调"})
    verified = await loop.do("worker", "verify", {"passed": True})
    assert verified["status"] == "verified"
    assert "evaluate" not in (await loop.get("worker"))["allowed_actions"]
    problem(
        await _act(
            anon, as_user, d["case_id"], "worker", "evaluate", {"satisfaction": "satisfied"}
        ),
        409,
        "dispute_case_action",
    )


async def _dept(conn: Any, code: str) -> int:
    return int(
        (
            await conn.execute(text("SELECT id FROM departments WHERE code = :c"), {"c": code})
        ).scalar_one()
    )


async def test_a_closed_dispute_is_not_reopened_through_its_case(anon, as_user, conn) -> None:
    d = await _dispute(anon, as_user, conn, "漏水纠纷")
    h = as_user("worker")
    await anon.post(f"/api/v1/disputes/{d['id']}/sessions", json=AGREED, headers=h)
    await anon.post(
        f"/api/v1/disputes/{d['id']}/followups", json={"n": 1, "holds": True}, headers=h
    )
    r = await anon.post(f"/api/v1/disputes/{d['id']}/close", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    case, _ = await _case(anon, as_user, d["case_id"], "community")
    assert case["status"] == "closed" and "reopen" not in case["allowed_actions"]
    problem(
        await _act(anon, as_user, d["case_id"], "community", "reopen", {"reason": "又吵起来了"}),
        409,
        "dispute_case_action",
    )


async def test_a_dispute_case_is_not_closed_as_a_duplicate(anon, as_user, conn) -> None:
    d = await _dispute(anon, as_user, conn, "楼道堆物纠纷")
    other = await report_case(anon, as_user, conn, category="MD-01")
    bad = problem(
        await anon.post(
            f"/api/v1/cases/{d['case_id']}/duplicate",
            json={"of": other["id"]},
            headers=as_user("worker"),
        ),
        409,
        "dispute_case_action",
    )
    assert "标记为重复件" in bad["detail"]
    # the other way round is fine: an ordinary report merged into the dispute's case
    r = await anon.post(
        f"/api/v1/cases/{other['id']}/duplicate",
        json={"of": d["case_id"]},
        headers=as_user("worker"),
    )
    assert r.status_code == 200 and r.json()["duplicate_of"] == d["case_id"], r.text


async def test_every_dispute_case_is_marked(conn, anon, as_user) -> None:
    d = await _dispute(anon, as_user, conn, "宅基地纠纷")
    unmarked = (
        await conn.execute(
            text(
                "SELECT count(*) FROM disputes d JOIN cases c ON c.id = d.case_id "
                "AND c.district_id = d.district_id WHERE c.managed_by IS DISTINCT FROM 'dispute'"
            )
        )
    ).scalar_one()
    assert unmarked == 0 and d["case_id"]

"""Regressions of issue 16 owned by the scope module (app.auth.scope) and the PII detector.

Bug 1: anonymous `GET /ogc/collections/cases/items?number=<a private-class case>` returned its
exact point and category, while Open311 hid the same case's location.
Bug 5: phone numbers typed into free text (descriptions, notes) were shown unmasked to
departments although the structured phone was masked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

GRID = "360602001001001"
PHONE = "13812345678"

_CASE = text(
    """
    INSERT INTO cases (number, category_code, title, description, address, location,
                       reporter_id, grid_id, community_id, street_id, district_id, status,
                       resident_phone)
    SELECT :number, cat.code,
           '婚姻家庭纠纷', '王女士 ' || :phone || ' 来电，称与丈夫争吵', '某小区 3 栋',
           ST_PointOnSurface(b.boundary), u.id, g.id, g.community_id,
           cm.parent_id, st.parent_id, 'registered', :phone
    FROM grids g JOIN areas cm ON cm.id = g.community_id JOIN areas st ON st.id = cm.parent_id
    -- joins, not subqueries: Citus refuses subqueries (even uncorrelated ones) in the target
    -- list of an INSERT … SELECT over reference tables ("correlated subqueries are not supported
    -- when the FROM clause contains a reference table")
    JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
    JOIN users u ON u.username = 'worker'
    JOIN (SELECT c.code FROM categories c WHERE c.active AND c.class_code = :cls
          ORDER BY c.code LIMIT 1) cat ON true
    WHERE g.code = :grid
    RETURNING id, number, district_id
    """
)


async def _case(conn: Any, cls: str, number: str) -> Any:
    return (
        await conn.execute(_CASE, {"cls": cls, "number": number, "phone": PHONE, "grid": GRID})
    ).one()


async def test_ogc_hides_a_private_class_case_from_the_public_as_open311_does(
    anon, conn, monkeypatch
) -> None:
    from app.config import get_settings
    from app.open311.public_ids import encode

    # every channel published here (issue 17 keeps internal reports out of the feed by default)
    monkeypatch.setattr(
        get_settings(), "open311_public_channels", "app,hotline,qr,department,console"
    )
    case = await _case(conn, "MD", "REG16B1MD")
    url = "/ogc/collections/cases/items"
    [feature] = (await anon.get(url, params={"number": case.number})).json()["features"]
    assert feature["geometry"] is None
    for hidden in ("category", "category_name", "grid_id", "title", "description", "address"):
        assert hidden not in feature["properties"], hidden
    assert feature["properties"]["status"] == "registered"
    one = (await anon.get(f"{url}/{case.id}")).json()
    assert one["geometry"] is None and "category" not in one["properties"]
    # The category cannot be learnt by filtering on it, nor the place by a bounding box.
    code = (
        await conn.execute(text("SELECT category_code FROM cases WHERE id = :id"), {"id": case.id})
    ).scalar_one()
    by_category = (await anon.get(url, params={"category": code, "limit": 1000})).json()
    assert case.id not in {f["id"] for f in by_category["features"]}
    boxed = (await anon.get(url, params={"bbox": "116,27,118,29", "limit": 10_000})).json()
    assert case.id not in {f["id"] for f in boxed["features"]}
    # Open311 says the same of it.
    [request] = (await anon.get(f"/open311/v2/requests/{encode(case.id)}.json")).json()
    assert request["lat"] is None and request["long"] is None and request["address"] is None
    assert request["service_code"] == "MD"
    # A public class keeps its point and category for everyone.
    public = await _case(conn, "SR", "REG16B1SR")
    [shown] = (await anon.get(url, params={"number": public.number})).json()["features"]
    assert shown["geometry"]["type"] == "Point" and "category" in shown["properties"]


async def test_staff_in_scope_still_see_a_private_case_whole(anon, as_user, conn) -> None:
    case = await _case(conn, "MD", "REG16B1MW")
    url = "/ogc/collections/cases/items"
    [feature] = (
        await anon.get(url, params={"number": case.number}, headers=as_user("worker"))
    ).json()["features"]
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["category"] and PHONE in feature["properties"]["description"]


async def _dispatch_to_cgj(conn: Any, case: Any) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO case_assignments (case_id, department_id, district_id, role, state,
                                          limits, sign_in_due)
            SELECT :case, d.id, :district, 'lead', 'dispatched', '{}'::jsonb,
                   now() + interval '1 day'
            FROM departments d WHERE d.code = 'CGJ'
            """
        ),
        {"case": case.id, "district": case.district_id},
    )
    await conn.execute(
        text(
            "INSERT INTO case_events (case_id, action, note, district_id) "
            "VALUES (:case, 'noted', :note, :district)"
        ),
        {"case": case.id, "note": f"已电话联系 {PHONE}，对方不在家", "district": case.district_id},
    )


async def test_phones_in_free_text_are_masked_for_departments(anon, as_user, conn) -> None:
    case = await _case(conn, "SR", "REG16B5SR")
    await _dispatch_to_cgj(conn, case)
    dept = as_user("dept")
    detail = (await anon.get(f"/api/v1/cases/{case.id}", headers=dept)).json()
    assert detail["resident"]["phone"] == "138****5678"
    assert PHONE not in str(detail)
    assert "138****5678" in detail["description"]
    assert any("138****5678" in (e["note"] or "") for e in detail["timeline"])
    listed = (await anon.get("/api/v1/cases", params={"q": case.number}, headers=dept)).json()
    assert [c["id"] for c in listed["items"]] == [case.id]
    assert PHONE not in str(listed)
    feature = (await anon.get(f"/ogc/collections/cases/items/{case.id}", headers=dept)).json()
    assert "138****5678" in feature["properties"]["description"]
    # Roles that talk to residents keep the number they need.
    worker = (await anon.get(f"/api/v1/cases/{case.id}", headers=as_user("worker"))).json()
    assert PHONE in worker["description"]

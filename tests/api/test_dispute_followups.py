"""The follow-up queue (回访, `GET /api/v1/me/dispute-followups`) for everyone who answers for
the follow-ups, through the one scope module: grid staff their grids, the community's mediators
their community, the street and the centre the disputes of their areas that went up to them
(escalated to the centre, or referred to a joint review)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.api.basedata_support import grid_id

AGREED = {"outcome": "agreed", "agreement": "按约定赔偿维修费", "signed_by": "双方当事人"}


async def _agreed(anon: Any, as_user: Any, g: int, who: str, **body: Any) -> dict:
    h = as_user(who)
    r = await anon.post(
        f"/api/v1/grids/{g}/disputes",
        json={"kind": "neighbour", "parties": [{"name": "甲"}], **body},
        headers=h,
    )
    assert r.status_code == 201, r.text
    d = r.json()
    r = await anon.post(f"/api/v1/disputes/{d['id']}/sessions", json=AGREED, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "follow_up", r.text
    return d


async def _queue(anon: Any, as_user: Any, who: str) -> dict[int, set[tuple[int, str]]]:
    r = await anon.get("/api/v1/me/dispute-followups", headers=as_user(who))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["due_at"] for i in items] == sorted(i["due_at"] for i in items)
    out: dict[int, set[tuple[int, str]]] = {}
    for i in items:
        out.setdefault(i["dispute_id"], set()).add((i["n"], i["reason"]))
    return out


async def _worker2_grid(conn: Any) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "SELECT pg.grid_id FROM users u JOIN posts po ON po.user_id = u.id "
                    "JOIN post_grids pg ON pg.post_id = po.id WHERE u.username = 'worker2' "
                    "LIMIT 1"
                )
            )
        ).scalar_one()
    )


async def test_mediators_street_and_centre_see_the_follow_ups_they_answer_for(
    anon, as_user, conn
) -> None:
    g, g2 = await grid_id(conn), await _worker2_grid(conn)
    plain = await _agreed(anon, as_user, g, "worker", title="噪音", risk="medium")
    other_grid = await _agreed(anon, as_user, g2, "worker2", title="停车", risk="low")
    high = await _agreed(anon, as_user, g, "worker", title="扬言报复", risk="high")

    # grid staff: their grids only
    worker = await _queue(anon, as_user, "worker")
    assert worker[plain["id"]] == {(1, "mediation"), (2, "mediation")}
    assert high["id"] in worker and other_grid["id"] not in worker
    assert plain["id"] not in await _queue(anon, as_user, "worker2")

    # the community's mediators: every grid of the community (both grids are 立新社区's)
    same_community = (
        await conn.execute(
            text("SELECT count(DISTINCT community_id) FROM grids WHERE id = ANY(:g)"),
            {"g": [g, g2]},
        )
    ).scalar_one()
    community = await _queue(anon, as_user, "community")
    assert community[plain["id"]] == {(1, "mediation"), (2, "mediation")}
    assert high["id"] in community
    assert (other_grid["id"] in community) == (same_community == 1)

    # the street and the centre: only what went up (high risk: escalated to the centre at once)
    for who in ("street", "centre"):
        q = await _queue(anon, as_user, who)
        assert plain["id"] not in q and other_grid["id"] not in q, who
        assert q[high["id"]] == {(1, "went_up"), (2, "went_up"), (3, "went_up")}, who

    # the administrator: as a mediator, everything
    admin = await _queue(anon, as_user, "admin")
    assert {plain["id"], other_grid["id"], high["id"]} <= set(admin)

    # a department holds no disputes:read: no queue
    r = await anon.get("/api/v1/me/dispute-followups", headers=as_user("dept"))
    assert r.status_code == 403, r.text


async def test_a_dispute_referred_to_a_joint_review_goes_up_to_the_street(
    anon, as_user, conn
) -> None:
    g = await grid_id(conn)
    h = as_user("worker")
    d = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={"title": "宅基地界址", "kind": "land", "parties": [{"name": "甲"}]},
            headers=h,
        )
    ).json()
    meeting = (
        await conn.execute(
            text(
                "INSERT INTO community_meetings (district_id, community_id, title, held_at, period) "
                "SELECT s.parent_id, c.id, '会商研判会', now(), '2026Q4' FROM grids g "
                "JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id "
                "WHERE g.id = :g RETURNING id"
            ),
            {"g": g},
        )
    ).scalar_one()
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/refer", json={"meeting_id": meeting}, headers=h
    )
    assert r.status_code == 200, r.text
    assert d["id"] not in await _queue(anon, as_user, "street")  # no follow-up due yet
    r = await anon.post(f"/api/v1/disputes/{d['id']}/sessions", json=AGREED, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "follow_up", r.text
    street = await _queue(anon, as_user, "street")
    assert street[d["id"]] == {(1, "went_up")}
    r = await anon.get("/api/v1/me/dispute-followups", headers=as_user("street"))
    [item] = [i for i in r.json()["items"] if i["dispute_id"] == d["id"]]
    assert item["meeting_id"] == meeting and item["escalated_to"] is None
    # done: off every queue
    await anon.post(
        f"/api/v1/disputes/{d['id']}/followups", json={"n": 1, "holds": True}, headers=h
    )
    for who in ("worker", "community", "street"):
        assert d["id"] not in await _queue(anon, as_user, who), who

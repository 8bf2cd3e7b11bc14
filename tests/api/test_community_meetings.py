"""Joint meetings end to end: a planned meeting with topics, held, resolutions become tasks with
working-day deadlines; the clock reminds and escalates them (fake clock); the next meeting's 述职
report; the no-meeting-this-quarter reminder; the two-way evaluation and its summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.api.test_community_lists import COMMUNITY, make_unit
from tests.helpers import problem


async def test_meeting_resolutions_tasks_clock_and_report(
    anon, as_user, demo, conn, session
) -> None:
    from app.loop import deadlines
    from app.loop.scheduler import tick

    area = demo[COMMUNITY]
    police = await make_unit(anon, as_user, area, "测试派出所", kind="government")
    prop = await make_unit(anon, as_user, area, "测试物业公司", kind="property")
    outsider = await make_unit(anon, as_user, area, "测试商户", member=False)
    r = await anon.post(
        f"/api/v1/areas/{area}/needs",
        headers=as_user("community"),
        json={"title": "车棚积水", "category": "facilities", "households": 40},
    )
    need = r.json()
    start = datetime.now(UTC) - timedelta(days=1)
    body = {
        "title": "第四季度联席会议",
        "held_at": (start + timedelta(days=30)).isoformat(),
        "place": "社区党群服务中心",
        "attendee_unit_ids": [police["id"], prop["id"]],
        "topics": [
            {"kind": "need", "ref_id": need["id"], "title": "车棚积水"},
            {"kind": "other", "title": "冬季消防"},
        ],
    }
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=as_user("community"),
        json={**body, "attendee_unit_ids": [outsider["id"]]},
    )
    assert problem(r, 422, "validation_error")["field"] == "attendee_unit_ids"
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=as_user("community"),
        json={**body, "topics": [{"kind": "need", "ref_id": 999999999, "title": "x"}]},
    )
    assert problem(r, 422, "validation_error")["field"] == "topics.0.ref_id"
    r = await anon.post(f"/api/v1/areas/{area}/meetings", headers=as_user("community"), json=body)
    assert r.status_code == 201, r.text
    meeting = r.json()
    assert meeting["status"] == "planned" and len(meeting["attendees"]) == 2
    # Resolutions need a held meeting.
    res_url = f"/api/v1/areas/{area}/meetings/{meeting['id']}/resolutions"
    resolutions = {
        "resolutions": [
            {"title": "排查车棚排水", "unit_id": prop["id"], "due_days": 3},
            {"title": "冬季消防巡查", "unit_id": police["id"], "due_days": 10},
        ]
    }
    body409 = problem(
        await anon.post(res_url, headers=as_user("community"), json=resolutions),
        409,
        "state_conflict",
    )
    assert body409["allowed_actions"] == ["hold"]
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings/{meeting['id']}/actions/hold",
        headers=as_user("community"),
        json={"minutes": "议定车棚排水由物业负责……"},
    )
    assert r.status_code == 200, r.text
    held = r.json()
    assert held["status"] == "held"
    held_at = datetime.fromisoformat(held["held_at"])
    assert held_at <= datetime.now(UTC)  # held earlier than planned: now
    r = await anon.post(res_url, headers=as_user("street"), json=resolutions)
    problem(r, 403, "forbidden")
    r = await anon.post(res_url, headers=as_user("community"), json=resolutions)
    assert r.status_code == 201, r.text
    tasks = {t["title"]: t for t in r.json()["resolutions"]}
    drain, fire = tasks["排查车棚排水"], tasks["冬季消防巡查"]
    want = await deadlines.due(session, held_at, 3, "days")
    assert datetime.fromisoformat(drain["due_at"]) == want.at
    assert (drain["unit_id"], drain["state"], drain["escalation_level"]) == (prop["id"], "open", 0)

    # The clock: a reminder just before, the street a minute late, the centre hours later.
    due = want.at
    r = await tick(session, now=due - timedelta(minutes=10))
    assert r["community"]["tasks_reminded"] >= 1
    assert (await tick(session, now=due - timedelta(minutes=9)))["community"]["tasks_reminded"] == 0
    assert (await tick(session, now=due + timedelta(minutes=1)))["community"][
        "tasks_escalated"
    ] >= 1
    assert (await tick(session, now=due + timedelta(minutes=2)))["community"][
        "tasks_escalated"
    ] == 0
    await tick(session, now=due + timedelta(hours=5))
    r = await anon.get(f"/api/v1/areas/{area}/tasks/{drain['id']}", headers=as_user("street"))
    task = r.json()
    assert (task["escalation_level"], task["state_label"]) == (2, "办理中")
    esc = [s for s in task["timeline"] if s["action"] == "escalated"]
    assert [s["detail"]["escalated_to"] for s in esc] == ["street", "centre"]
    assert [s["action"] for s in task["timeline"]][:2] == ["created", "reminded"]
    events = list(
        await conn.execute(
            text(
                "SELECT type FROM events WHERE payload->>'task_id' = :t AND :a = ANY(area_ids) "
                "ORDER BY id"
            ),
            {"t": str(drain["id"]), "a": area},
        )
    )
    assert [e.type for e in events] == [
        "community.task_created",
        "community.task_deadline_soon",
        "community.task_overdue",
        "community.task_overdue",
    ]

    # Tasks: progress, done; a done task cannot be done again.
    t_url = f"/api/v1/areas/{area}/tasks/{fire['id']}/actions"
    r = await anon.post(
        f"{t_url}/progress",
        headers=as_user("community"),
        json={"progress": 40, "note": "已巡查3栋"},
    )
    assert r.json()["progress"] == 40
    r = await anon.post(f"{t_url}/done", headers=as_user("community"), json={})
    assert (r.json()["state"], r.json()["progress"]) == ("done", 100)
    body409 = problem(
        await anon.post(f"{t_url}/done", headers=as_user("community"), json={}),
        409,
        "state_conflict",
    )
    assert body409["allowed_actions"] == []
    r = await anon.get(
        f"/api/v1/areas/{area}/tasks", headers=as_user("centre"), params={"state": "done"}
    )
    done_ids = [t["id"] for t in r.json()]
    assert fire["id"] in done_ids and drain["id"] not in done_ids

    # The next meeting: each member unit's 述职 report is prepared from the record.
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=as_user("community"),
        json={
            "title": "下一次联席会议",
            "held_at": datetime.now(UTC).isoformat(),
            "status": "held",
        },
    )
    assert r.status_code == 201, r.text
    nxt = r.json()
    r = await anon.get(
        f"/api/v1/areas/{area}/meetings/{nxt['id']}/report", headers=as_user("street")
    )
    assert r.status_code == 200, r.text
    report = {u["unit_id"]: u for u in r.json()["units"]}
    assert outsider["id"] not in report
    p = report[prop["id"]]
    assert [t["id"] for t in p["tasks"]] == [drain["id"]]
    # Still within its deadline at this meeting (the fake clock above ran ahead of it).
    assert (p["assigned"], p["done"], p["open_overdue"]) == (1, 0, 0)
    assert p["tasks"][0]["escalation_level"] == 2
    q = report[police["id"]]
    assert (q["assigned"], q["done"], q["done_on_time"]) == (1, 1, 1)


async def test_no_meeting_this_quarter_is_reminded_once(anon, as_user, demo, session) -> None:
    from app.loop.scheduler import tick

    area = demo[COMMUNITY]
    await make_unit(anon, as_user, area, "测试供电所", kind="enterprise")
    # 2027Q1 has no meeting: reminded when 15 days are left, not before, and only once.
    early = datetime(2027, 2, 1, 2, 0, tzinfo=UTC)
    assert area not in (await tick(session, now=early))["community"]["meetings_missing"]
    late = datetime(2027, 3, 20, 2, 0, tzinfo=UTC)
    assert area in (await tick(session, now=late))["community"]["meetings_missing"]
    assert area not in (await tick(session, now=late))["community"]["meetings_missing"]
    # A quarter with a meeting is not reminded.
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=as_user("community"),
        json={"title": "二季度联席会议", "held_at": "2027-06-10T09:00:00"},  # local time
    )
    assert (r.json()["period"], r.json()["held_at"]) == ("2027Q2", "2027-06-10T09:00:00+08:00")
    june = datetime(2027, 6, 20, 2, 0, tzinfo=UTC)
    assert area not in (await tick(session, now=june))["community"]["meetings_missing"]


async def test_two_way_evaluation(anon, as_user, demo) -> None:
    area = demo[COMMUNITY]
    a = await make_unit(anon, as_user, area, "测试学校党支部", kind="public_institution")
    b = await make_unit(anon, as_user, area, "测试超市", kind="enterprise")
    c = await make_unit(anon, as_user, area, "测试非成员", member=False)
    url = f"/api/v1/areas/{area}/unit-ratings"

    async def rate(who: str, unit: dict, rating: str, **kw) -> dict:
        r = await anon.post(
            url,
            headers=as_user(who),
            json={"unit_id": unit["id"], "period": "2026Q4", "rating": rating, **kw},
        )
        assert r.status_code == 201, r.text
        return r.json()

    assert (await rate("street", a, "excellent"))["rater_level"] == "street"
    assert (await rate("community", a, "excellent"))["rater_level"] == "community"
    await rate("community", a, "qualified", rater_level="resident", rater_name="居民代表张三")
    await rate("community", a, "unqualified", rater_level="grid", rater_name="第一网格党支部")
    await rate("street", b, "unqualified")
    await rate("community", b, "unqualified")
    # Who may rate as what.
    r = await anon.post(
        url,
        headers=as_user("street"),
        json={
            "unit_id": a["id"],
            "period": "2026Q4",
            "rating": "excellent",
            "rater_level": "resident",
        },
    )
    problem(r, 403, "forbidden")
    r = await anon.post(
        url,
        headers=as_user("community"),
        json={"unit_id": a["id"], "period": "2026Q4", "rating": "excellent", "rater_level": "grid"},
    )
    problem(r, 422, "validation_error")
    r = await anon.post(
        url,
        headers=as_user("community"),
        json={"unit_id": c["id"], "period": "2026Q4", "rating": "excellent"},
    )
    problem(r, 422, "validation_error")
    r = await anon.post(
        url,
        headers=as_user("worker"),
        json={"unit_id": a["id"], "period": "2026Q4", "rating": "excellent"},
    )
    problem(r, 403, "forbidden")

    def summary_of(body: dict) -> dict:
        return {u["unit_id"]: u for u in body["units"]}

    r = await anon.get(
        f"/api/v1/areas/{area}/evaluations/summary",
        headers=as_user("centre"),
        params={"period": "2026Q4"},
    )
    s = summary_of(r.json())
    # a: 2 excellent, 1 qualified, 1 unqualified → (200 + 60) / 4; half excellent → excellent
    assert (s[a["id"]]["ratings"], s[a["id"]]["score"], s[a["id"]]["result"]) == (
        4,
        65.0,
        "excellent",
    )
    assert s[a["id"]]["by_level"] == {
        "street": {"excellent": 1},
        "community": {"excellent": 1},
        "resident": {"qualified": 1},
        "grid": {"unqualified": 1},
    }
    assert (s[b["id"]]["score"], s[b["id"]]["result"]) == (0.0, "unqualified")
    assert c["id"] not in s
    # The street changes its verdict on b: its rating is replaced, not added.
    await rate("street", b, "qualified")
    r = await anon.get(
        f"/api/v1/areas/{area}/evaluations/summary",
        headers=as_user("community"),
        params={"period": "2026Q4"},
    )
    s = summary_of(r.json())
    assert (s[b["id"]]["ratings"], s[b["id"]]["qualified"], s[b["id"]]["result"]) == (
        2,
        1,
        "unqualified",
    )


async def test_a_department_unit_hears_of_its_tasks(anon, as_user, demo, conn) -> None:
    area = demo[COMMUNITY]
    cgj = (await conn.execute(text("SELECT id FROM departments WHERE code = 'CGJ'"))).scalar_one()
    sub = (
        await conn.execute(
            text(
                "INSERT INTO webhook_subscriptions (department_id, url, secret) "
                "VALUES (:d, 'https://cgj.example/hook', 's') RETURNING id"
            ),
            {"d": cgj},
        )
    ).scalar_one()
    unit = await make_unit(
        anon, as_user, area, "测试城管中队", kind="government", department_id=cgj
    )
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=as_user("community"),
        json={"title": "临时联席会议", "held_at": datetime.now(UTC).isoformat(), "status": "held"},
    )
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings/{r.json()['id']}/resolutions",
        headers=as_user("community"),
        json={"resolutions": [{"title": "清理占道堆物", "unit_id": unit["id"], "due_days": 2}]},
    )
    [task] = r.json()["resolutions"]
    row = (
        await conn.execute(
            text(
                "SELECT e.department_ids, (SELECT count(*) FROM webhook_deliveries w "
                "WHERE w.event_id = e.id AND w.district_id = e.district_id "
                "AND w.subscription_id = :s) AS deliveries "
                "FROM events e WHERE e.type = 'community.task_created' "
                "AND e.payload->>'task_id' = :t"
            ),
            {"t": str(task["id"]), "s": sub},
        )
    ).one()
    assert (row.department_ids, row.deliveries) == ([cgj], 1)

    # The department sees the task in its own list and reports on it; another department cannot.
    r = await anon.get("/api/v1/department-tasks", headers=as_user("dept"))
    assert task["id"] in [t["id"] for t in r.json()]
    r = await anon.get("/api/v1/department-tasks", headers=as_user("dept2"))
    assert task["id"] not in [t["id"] for t in r.json()]
    url = f"/api/v1/department-tasks/{task['id']}/actions"
    r = await anon.post(f"{url}/progress", headers=as_user("dept2"), json={"progress": 10})
    problem(r, 404, "not_found")
    r = await anon.post(f"{url}/progress", headers=as_user("community"), json={"progress": 10})
    problem(r, 403, "forbidden")
    r = await anon.post(
        f"{url}/progress", headers=as_user("dept"), json={"progress": 50, "note": "已清理一半"}
    )
    assert (r.json()["progress"], r.json()["progress_note"]) == (50, "已清理一半")
    r = await anon.post(f"{url}/done", headers=as_user("dept"), json={})
    assert r.json()["state"] == "done"
    problem(await anon.post(f"{url}/done", headers=as_user("dept"), json={}), 409, "state_conflict")
    r = await anon.get(f"/api/v1/areas/{area}/tasks/{task['id']}", headers=as_user("community"))
    steps = r.json()["timeline"]
    assert [s["action"] for s in steps] == ["created", "progress", "done"]
    assert steps[-1]["actor"] == "城管局派单员"


async def test_meeting_coverage_by_quarter(anon, as_user, demo) -> None:
    r = await anon.get(
        f"/api/v1/areas/{demo['360602001000']}/meetings/coverage",
        headers=as_user("street"),
        params={"year": 2026},
    )
    assert r.status_code == 200, r.text
    got = {c["name"]: c for c in r.json()["communities"]}
    lixin = got["立新社区"]
    assert lixin["member_units"] == 9
    assert (lixin["meetings"]["Q1"], lixin["meetings"]["Q3"]) == (0, 1)
    assert lixin["meetings"]["Q4"] >= 1
    assert {"2026Q1", "2026Q2"} <= set(lixin["missing"]) and "2026Q3" not in lixin["missing"]
    # A community with no big party committee yet is never "missing" a meeting.
    assert got["站江社区"]["member_units"] == 0 and got["站江社区"]["missing"] == []
    r = await anon.get(
        f"/api/v1/areas/{demo['360602001000']}/meetings/coverage",
        headers=as_user("worker"),
        params={"year": 2026},
    )
    assert r.status_code == 403

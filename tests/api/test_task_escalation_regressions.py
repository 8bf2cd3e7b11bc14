"""Bug 3 of issue 16 in the community clock: a tracked task's centre is told
`escalate_to_centre_hours` after the street was told, not after the deadline (the loop's
assignments had the same bug, fixed in migration 0018; the tasks' in 0020)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.config import get_settings
from tests.api.test_community_lists import COMMUNITY, make_unit
from tests.api.test_community_regressions import _project


async def test_the_centre_is_told_hours_after_the_street(anon, as_user, demo, session) -> None:
    from app.loop.scheduler import tick

    area = demo[COMMUNITY]
    unit = await make_unit(
        anon,
        as_user,
        area,
        "回归测试物业服务中心",
        kind="public_institution",
        representative="李经理",
    )
    project = await _project(anon, as_user, area, unit, "回归测试：楼道照明")
    task = project["tasks"][0]
    url = f"/api/v1/areas/{area}/tasks/{task['id']}"
    hours = get_settings().escalate_to_centre_hours
    assert hours > 1
    due = datetime.fromisoformat(task["due_at"])

    # The clock was down over the deadline: it first runs `hours` after it, and tells the street.
    street_told = due + timedelta(hours=hours, minutes=1)
    await tick(session, now=street_told)
    r = await anon.get(url, headers=as_user("community"))
    assert r.json()["escalation_level"] == 1, r.text

    # The deadline is more than `hours` past, but the street was told only a minute ago.
    await tick(session, now=street_told + timedelta(minutes=1))
    assert (await anon.get(url, headers=as_user("community"))).json()["escalation_level"] == 1
    await tick(session, now=street_told + timedelta(hours=hours) - timedelta(minutes=1))
    assert (await anon.get(url, headers=as_user("community"))).json()["escalation_level"] == 1

    # `hours` after the street was told, the centre is.
    await tick(session, now=street_told + timedelta(hours=hours, minutes=1))
    body = (await anon.get(url, headers=as_user("community"))).json()
    assert body["escalation_level"] == 2
    esc = [s for s in body["timeline"] if s["action"] == "escalated"]
    assert [s["detail"]["escalated_to"] for s in esc] == ["street", "centre"]

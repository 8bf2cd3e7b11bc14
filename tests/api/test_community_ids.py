"""Ids beyond a bigint in the community routes' paths, queries and bodies are a 422, not a 500."""

from __future__ import annotations

from tests.api.test_community_lists import COMMUNITY
from tests.helpers import problem

HUGE = 99999999999999999999


async def test_huge_ids_are_invalid(anon, as_user, demo) -> None:
    area = demo[COMMUNITY]
    h = as_user("admin")
    for path in (
        f"/api/v1/areas/{area}/needs/{HUGE}",
        f"/api/v1/areas/{area}/tasks/{HUGE}",
        f"/api/v1/areas/{area}/units/{HUGE}",
        f"/api/v1/areas/{area}/meetings/{HUGE}/report",
        f"/api/v1/areas/{area}/matters/{HUGE}",
        f"/api/v1/areas/{area}/tasks?unit_id={HUGE}",
        f"/api/v1/support-measures?department_id={HUGE}",
    ):
        problem(await anon.get(path, headers=h), 422, "validation_error")
    r = await anon.post(
        f"/api/v1/areas/{area}/resources",
        headers=h,
        json={"unit_id": HUGE, "kind": "venue", "title": "x", "valid_from": "2026-01-01"},
    )
    problem(r, 422, "validation_error")
    r = await anon.post(
        f"/api/v1/areas/{area}/projects",
        headers=h,
        json={"need_id": 1, "title": "x", "lead_unit_id": 1, "resource_ids": [HUGE]},
    )
    problem(r, 422, "validation_error")

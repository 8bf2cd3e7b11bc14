"""Tests that need real commits and real concurrency: the app on its own connection pool, the
database shared. Everything they create is removed afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from tests.factories import DEMO_GRID, insert_case, report_body

TAG = "LIVE-TEST"


@pytest_asyncio.fixture
async def live(engine, tokens) -> AsyncIterator[httpx.AsyncClient]:
    from app.main import app

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://live") as c:
        yield c
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM cases WHERE title LIKE :t"), {"t": TAG + "%"})
        await conn.execute(text("DELETE FROM idempotency_keys WHERE key LIKE :t"), {"t": TAG + "%"})


def auth(tokens, name: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[name]}", **extra}


async def _body(engine, title: str, grid: str = DEMO_GRID) -> dict:
    async with engine.connect() as c:
        return await report_body(c, title, grid)


async def test_racing_retries_create_one_case(live, tokens, engine) -> None:
    body = await _body(engine, f"{TAG} race")
    key = f"{TAG}-{uuid.uuid4()}"
    h = auth(tokens, "worker", **{"Idempotency-Key": key})
    rs = await asyncio.gather(
        *(live.post("/api/v1/cases", json=body, headers=h) for _ in range(12))
    )
    codes = sorted(r.status_code for r in rs)
    assert set(codes) <= {201, 409}, [r.text for r in rs]
    done = [r for r in rs if r.status_code == 201]
    assert done and len({r.json()["id"] for r in done}) == 1
    assert all(r.headers.get("retry-after") for r in rs if r.status_code == 409)
    async with engine.connect() as c:
        n = (
            await c.execute(
                text("SELECT count(*) FROM cases WHERE title = :t"), {"t": f"{TAG} race"}
            )
        ).scalar()
    assert n == 1
    # once done, every retry replays the first answer
    later = await live.post("/api/v1/cases", json=body, headers=h)
    assert later.status_code == 201 and later.content == done[0].content


async def _sync_all(
    live, tokens, name: str, cursor: str | None
) -> tuple[list[dict], list[int], str]:
    cases, removed = [], []
    for _ in range(50):
        r = await live.get(
            "/api/v1/sync",
            params={"limit": 3, **({"cursor": cursor} if cursor else {})},
            headers=auth(tokens, name),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        cases += body["cases"]
        removed += body["removed"]
        cursor = body["cursor"]
        if not body["has_more"]:
            return cases, removed, cursor
    raise AssertionError("sync never finished")


async def test_sync_never_skips_or_repeats(live, tokens, engine) -> None:
    _, _, cursor = await _sync_all(live, tokens, "worker", None)
    ids = []
    for i in range(4):
        r = await live.post(
            "/api/v1/cases",
            json=await _body(engine, f"{TAG} sync {i}"),
            headers=auth(tokens, "worker"),
        )
        ids.append(r.json()["id"])
    got, removed, cursor = await _sync_all(live, tokens, "worker", cursor)
    assert [c["id"] for c in got] == ids and removed == []
    first = await live.get("/api/v1/sync", headers=auth(tokens, "worker"))
    tasks = {t["case_id"]: t["actions"] for t in first.json()["tasks"]}
    assert "on_spot" in tasks[ids[0]]  # a grid worker may handle a new report on the spot
    # Nothing changed: a small, quick answer with the same position.
    again, _, cursor2 = await _sync_all(live, tokens, "worker", cursor)
    assert again == []
    # A slow transaction changes case 0 and stays open; a fast one changes case 1 and commits.
    # Each names the case's district: on Citus a one-shard update (an update by id alone runs
    # on every shard and waits for the slow one's lock on them).
    async with engine.connect() as c:
        district = (
            await c.execute(text("SELECT district_id FROM cases WHERE id = :id"), {"id": ids[0]})
        ).scalar_one()
    # As the app's every UPDATE of a case, it sets the sync number (migration 0032).
    change = text(
        "UPDATE cases SET description = :d, change_seq = sync_number() "
        "WHERE id = :id AND district_id = :district"
    )
    async with engine.connect() as slow:
        await slow.begin()
        await slow.execute(change, {"d": "slow", "id": ids[0], "district": district})
        async with engine.begin() as fast:
            await fast.execute(change, {"d": "fast", "id": ids[1], "district": district})
        mid, _, cursor3 = await _sync_all(live, tokens, "worker", cursor2)
        assert mid == []  # the fast change waits behind the slow one: nothing can be skipped
        await slow.commit()
    after, _, cursor4 = await _sync_all(live, tokens, "worker", cursor3)
    assert sorted(c["id"] for c in after) == sorted(ids[:2])
    assert {c["id"]: c["description"] for c in after} == {ids[0]: "slow", ids[1]: "fast"}
    # worker2 sees none of it
    other, _, _ = await _sync_all(live, tokens, "worker2", None)
    assert not {c["id"] for c in other} & set(ids)
    # a case someone else reported in worker's grid, then moved to another grid: removed
    r = await live.post(
        "/api/v1/cases",
        json=await _body(engine, f"{TAG} sync moved"),
        headers=auth(tokens, "leader"),
    )
    moved = r.json()["id"]
    seen, _, cursor5 = await _sync_all(live, tokens, "worker", cursor4)
    assert [c["id"] for c in seen] == [moved]
    async with engine.begin() as c:
        far = (
            await c.execute(text("SELECT id FROM grids WHERE code = '360602004001001'"))
        ).scalar()
    r = await live.post(
        f"/api/v1/cases/{moved}/place", json={"grid_id": far}, headers=auth(tokens, "centre")
    )
    assert r.status_code == 200, r.text
    gone, removed, _ = await _sync_all(live, tokens, "worker", cursor5)
    assert removed == [moved] and gone == []
    problem = await live.get(
        "/api/v1/sync", params={"cursor": "not-a-cursor"}, headers=auth(tokens, "worker")
    )
    assert problem.status_code == 422


@pytest.mark.parametrize("n", [1])
async def test_sync_first_call_returns_everything_visible(live, tokens, engine, n) -> None:
    got, _, _ = await _sync_all(live, tokens, "community", None)
    async with engine.connect() as c:
        community = (
            await c.execute(text("SELECT id FROM areas WHERE code = '360602001001'"))
        ).scalar()
        want = (
            await c.execute(
                text(
                    "SELECT count(*) FROM cases WHERE community_id = :c OR reporter_id = "
                    "(SELECT id FROM users WHERE username = 'community')"
                ),
                {"c": community},
            )
        ).scalar()
    assert len(got) == want


async def test_fifty_conflicting_actions_one_wins(live, tokens, engine) -> None:
    r = await live.post(
        "/api/v1/cases", json=await _body(engine, f"{TAG} conflict"), headers=auth(tokens, "worker")
    )
    case_id = r.json()["id"]
    actions = ["register", "reject", "on_spot", "whistle", "dispatch"] * 10
    who = {
        "register": "community",
        "reject": "community",
        "on_spot": "worker",
        "whistle": "community",
        "dispatch": "street",
    }
    bodies = {"reject": {"reason": "x"}, "whistle": {"reason": "y"}}

    async def act(name: str) -> httpx.Response:
        return await live.post(
            f"/api/v1/cases/{case_id}/actions/{name}",
            json=bodies.get(name, {}),
            headers=auth(tokens, who[name], **{"If-Match": '"1"'}),
        )

    rs = await asyncio.gather(*(act(a) for a in actions))
    codes = [r.status_code for r in rs]
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 412, 409}, [r.text for r in rs if r.status_code >= 500]
    won = next(r for r in rs if r.status_code == 200).json()
    assert won["version"] == 2
    steps = [e["action"] for e in won["timeline"]]
    assert len(steps) == 2 and steps[0] == "reported"
    async with engine.connect() as c:
        events = (
            await c.execute(
                text("SELECT count(*) FROM case_events WHERE case_id = :id"), {"id": case_id}
            )
        ).scalar()
        version = (
            await c.execute(text("SELECT version FROM cases WHERE id = :id"), {"id": case_id})
        ).scalar()
    assert events == 2 and version == 2


async def test_event_ids_follow_commit_order(engine, tokens) -> None:
    """Events get their ids when their transaction commits (a deferred trigger takes the order
    lock then): writers never wait for each other before COMMIT, and the one that commits first
    has the lower id even if it wrote its event later. Resume-after-id is then safe."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.events.outbox import emit

    async with engine.begin() as c:
        case_id = await insert_case(c, None, number="ORDER-TEST", title=f"{TAG} order")
    try:
        early = AsyncSession(engine)
        late = AsyncSession(engine)
        await emit(early, "test.written_first", case_id, {})
        # Not blocked by the open transaction that emitted before it.
        await asyncio.wait_for(emit(late, "test.written_second", case_id, {}), 2)
        async with engine.connect() as c:
            seen = (
                await c.execute(
                    text("SELECT count(*) FROM events WHERE case_id = :c"), {"c": case_id}
                )
            ).scalar()
        assert seen == 0  # nothing is published before its commit
        await late.commit()
        await early.commit()
        await early.close()
        await late.close()
        async with engine.connect() as c:
            order = (
                (
                    await c.execute(
                        text("SELECT type FROM events WHERE case_id = :c ORDER BY id"),
                        {"c": case_id},
                    )
                )
                .scalars()
                .all()
            )
            left = (await c.execute(text("SELECT count(*) FROM event_intents"))).scalar()
        assert order == ["test.written_second", "test.written_first"]
        assert left == 0
    finally:
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM cases WHERE id = :id"), {"id": case_id})

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


_RELAY_ONLY = text("SET LOCAL wangge.publish_now = off")
"""The suite's database publishes each transaction's events at its own commit (tests/conftest.py):
these tests' transactions leave them to the relay, as production does."""


async def _types(engine, case_id: int) -> list[str]:
    async with engine.connect() as c:
        q = text("SELECT type FROM events WHERE case_id = :c ORDER BY id")
        return list((await c.execute(q, {"c": case_id})).scalars())


async def test_event_ids_follow_the_order_events_become_visible(engine, tokens) -> None:
    """The relay (migration 0038) gives events their ids: writers never wait for each other,
    an intent is committed with its writer, and one committed late gets a higher id than every
    event published before it, even if it was written first. Resume-after-id is then safe."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.events.outbox import emit, publish

    async with engine.begin() as c:
        case_id = await insert_case(c, None, number="ORDER-TEST", title=f"{TAG} order")
    early = AsyncSession(engine)
    late = AsyncSession(engine)
    try:
        await early.execute(_RELAY_ONLY)
        await late.execute(_RELAY_ONLY)
        await emit(early, "test.written_first", case_id, {})
        # Not blocked by the open transaction that emitted before it.
        await asyncio.wait_for(emit(late, "test.written_second", case_id, {}), 2)
        await late.commit()
        assert await _types(engine, case_id) == []  # committed, not yet published
        async with engine.connect() as c:
            assert await publish(c) == 1  # the committed one alone
            await c.commit()
        top = await _max_event(engine)
        await early.commit()
        async with engine.connect() as c:
            assert await publish(c) == 1
            await c.commit()
            late_one = (
                await c.execute(
                    text("SELECT id, type FROM events WHERE id > :top ORDER BY id"), {"top": top}
                )
            ).all()
            left = (await c.execute(text("SELECT count(*) FROM event_intents"))).scalar()
        assert await _types(engine, case_id) == ["test.written_second", "test.written_first"]
        # a reader that had everything up to `top` gets the late one after it
        assert [r.type for r in late_one] == ["test.written_first"]
        assert left == 0
    finally:
        await early.close()
        await late.close()
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM cases WHERE id = :id"), {"id": case_id})


async def _max_event(engine) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text("SELECT coalesce(max(id), 0) FROM events"))).scalar_one())


async def test_the_relay_is_woken_by_a_commit_and_completes_the_intent(
    engine, tokens, monkeypatch
) -> None:
    """A process's relay publishes at once after one of its own transactions queued an event
    (the poll is set to a minute here), with who sees it as of that commit: the case's places
    and the departments it was assigned to then."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.config import get_settings
    from app.events import outbox

    monkeypatch.setattr(get_settings(), "events_publish_seconds", 60.0)
    async with engine.begin() as c:
        case_id = await insert_case(c, None, number="RELAY-TEST", title=f"{TAG} relay")
        place = (
            await c.execute(
                text(
                    "SELECT grid_id, ARRAY[community_id, street_id, district_id] AS areas "
                    "FROM cases WHERE id = :id"
                ),
                {"id": case_id},
            )
        ).one()
    stop = asyncio.Event()
    relay = asyncio.create_task(outbox.run_forever(stop, engine.connect))
    try:
        await asyncio.sleep(0.3)  # its first look: nothing to publish
        s = AsyncSession(engine)
        await s.execute(_RELAY_ONLY)
        await outbox.emit(s, "test.relayed", case_id, {"n": 1})
        await s.commit()
        await s.close()
        for _ in range(100):
            if await _types(engine, case_id):
                break
            await asyncio.sleep(0.05)
        async with engine.connect() as c:
            ev = (
                await c.execute(
                    text("SELECT type, grid_id, area_ids, payload FROM events WHERE case_id = :c"),
                    {"c": case_id},
                )
            ).one()
        assert ev.type == "test.relayed" and ev.payload == {"n": 1}
        assert ev.grid_id == place.grid_id and ev.area_ids == [a for a in place.areas if a]
    finally:
        stop.set()
        await asyncio.wait_for(relay, 5)
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM cases WHERE id = :id"), {"id": case_id})


async def test_the_relay_drops_the_intent_of_a_case_removed_since(engine, tokens) -> None:
    """A committed intent whose case was removed before the relay ran publishes nothing (its
    events would go with the case) and does not stop the intents behind it."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.events.outbox import emit, publish

    async with engine.begin() as c:
        gone = await insert_case(c, None, number="RELAY-GONE", title=f"{TAG} gone")
        kept = await insert_case(c, None, number="RELAY-KEPT", title=f"{TAG} kept")
    try:
        s = AsyncSession(engine)
        await s.execute(_RELAY_ONLY)
        await emit(s, "test.of_a_removed_case", gone, {})
        await emit(s, "test.behind_it", kept, {})
        await s.commit()
        await s.close()
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM cases WHERE id = :id"), {"id": gone})
        async with engine.connect() as c:
            assert await publish(c) == 2
            await c.commit()
            left = (await c.execute(text("SELECT count(*) FROM event_intents"))).scalar()
        assert await _types(engine, gone) == []
        assert await _types(engine, kept) == ["test.behind_it"]
        assert left == 0
    finally:
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM cases WHERE id = ANY(:ids)"), {"ids": [gone, kept]})

"""What a server process keeps in memory between requests stays bounded, whatever the number of
requests: each store keyed by something a client chooses (a session, an event id, a console) is
fed many more distinct keys than its bound, and must stay within it, keeping the newest.
(Rate-limit counters are not among them: they live in PostgreSQL, `rate_counters`, and
`wangge purge` forgets idle keys.) The soak bench (bench/bench_soak.py, ``--trace``) is where
the whole process is watched; these are the stores it would otherwise take days of traffic to
fill.
"""

from __future__ import annotations

import uuid

import pytest

from app.auth import policy
from app.auth.policy import PostScope, Principal
from app.events import hub as sse


def _principal(i: int) -> Principal:
    return Principal(
        user_id=i,
        username=f"u{i}",
        display_name=f"u{i}",
        session_id=uuid.UUID(int=i + 1),
        posts=[
            PostScope(
                id=i, role="grid_worker", area_id=None, department_id=None, grid_ids=frozenset()
            )
        ],
    )


def test_the_principal_cache_keeps_at_most_its_size_newest_first() -> None:
    assert policy.principal_cache.size == 10_000  # the process's cache: one entry per session
    cache = policy._Cache(size=50)
    for i in range(1_000):  # a thousand sessions, each seen once
        cache.put(_principal(i))
        assert len(cache.items) <= 50
    assert len(cache.items) == 50
    assert cache.get(uuid.UUID(int=1_000)) is not None  # the newest is kept
    assert cache.get(uuid.UUID(int=1)) is None  # the oldest went first
    # a session seen again moves to the end: it outlives the others
    cache.put(_principal(950))
    for i in range(1_000, 1_049):
        cache.put(_principal(i))
    assert cache.get(uuid.UUID(int=951)) is not None and cache.get(uuid.UUID(int=952)) is None


def test_the_recent_ids_keep_at_most_their_size() -> None:
    r = sse._Recent(100)
    for i in range(10_000):
        r.add(i)
        r.add(i)  # a repeat takes no room
    assert len(r.ids) == len(r.order) == 100
    assert 9_999 in r and 9_900 in r and 9_899 not in r


def _event(i: int) -> sse.HubEvent:
    return sse.HubEvent(i, "case.report", i, None, frozenset(), frozenset(), None, "{}")


def test_the_hub_remembers_a_bounded_number_of_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener notes each delivered event id (to deliver it once): only the newest
    SEEN_MAX; a console that does not read holds at most QUEUE_SIZE, then is told to resync."""
    monkeypatch.setattr(sse, "SEEN_MAX", 200)
    monkeypatch.setattr(sse, "QUEUE_SIZE", 10)
    hub = sse.Hub()
    reader = hub.subscribe(sse.Scope(everything=True))
    sleeper = hub.subscribe(sse.Scope(everything=True))
    for start in range(1, 5_001, 100):
        batch = [_event(i) for i in range(start, start + 100)]
        assert hub.dispatch(batch) == 100
        while not reader.queue.empty():
            reader.queue.get_nowait()
        assert len(hub._seen.ids) <= 200 and sleeper.queue.qsize() <= 10
    assert len(hub._seen.ids) == len(hub._seen.order) == 200
    assert 5_000 in hub._seen and 4_800 not in hub._seen
    assert sleeper.queue.get_nowait() is sse.RESYNC
    hub.unsubscribe(reader)
    hub.unsubscribe(sleeper)
    assert hub.subscribers == 0

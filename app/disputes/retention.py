"""Retention's forgetter for disputes (registered in `app.extensions`): a party's copied name, and
the name in the dispute's free text, go when the person is reduced to figures or erased."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.disputes.service import REMOVED_NAME

_NAMED = (
    "WITH p AS (SELECT dispute_id, name FROM dispute_parties WHERE district_id = :d "
    "AND resident_id = :r AND name <> :n AND length(name) >= 2) "
)
_SCRUB = tuple(
    text(
        _NAMED + f"UPDATE {table} t SET {sets} FROM p "
        f"WHERE t.district_id = :d AND t.{key} = p.dispute_id"
    )
    for table, key, sets in (
        ("disputes", "id", "agreement = replace(t.agreement, p.name, :n)"),
        (
            "dispute_sessions",
            "dispute_id",
            "agreement = replace(t.agreement, p.name, :n), "
            "signed_by = left(replace(t.signed_by, p.name, :n), 200), "
            "note = replace(t.note, p.name, :n)",
        ),
        ("dispute_followups", "dispute_id", "note = replace(t.note, p.name, :n)"),
    )
)
"""A forgotten party's name out of the free text of the disputes it is named in (one statement a
table, in the person's district)."""


async def forget_person(
    session: AsyncSession, district_id: int, resident_id: int, how: str
) -> None:
    """Retention's forgetter (registered in `app.extensions`): a party's copied name goes when
    the person is reduced to figures (the id stays, so repeat parties still count) and, with the
    link, when the person is erased. The name also goes from the free text of the disputes the
    person is a party to (agreements, signers, session and follow-up notes), before the party's
    own copy is replaced."""
    for sql in _SCRUB:
        await session.execute(sql, {"n": REMOVED_NAME, "d": district_id, "r": resident_id})
    await session.execute(
        text(
            "UPDATE dispute_parties SET name = :n, "
            "resident_id = CASE WHEN :erase THEN NULL ELSE resident_id END "
            "WHERE district_id = :d AND resident_id = :r"
        ),
        {
            "n": REMOVED_NAME,
            "erase": how == "erase",
            "d": district_id,
            "r": resident_id,
        },
    )

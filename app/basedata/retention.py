"""Retention (PIPL: no longer than needed): people who moved away or died more than
`basedata_retention_days` ago are reduced to figures: their name, identity number and phone (the
sealed values, hashes and masked copies) and the values in their change history are removed;
gender, birth year, tags and the household they left stay, so the figures still add up. A
scheduled job of the clock (`basedata`, registered in `app.extensions`) and
`wangge basedata-retention`. Key rotation (`wangge rotate-keys`) is here too: every row sealed
with an older key is opened and sealed again with the current one, and its keyed hashes are
recomputed (a new `WANGGE_PII_HASH_KEY` takes effect the same way).

Other modules keep copies of a person (a dispute's party name): each registers a forgetter
(`register_forgetter`, from above in `app.extensions`), which both the reduction here and a
deletion request (`app.basedata.residents.erase`) call for every person they forget."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.basedata import crypto
from app.config import get_settings
from app.pii import mask_id_number, mask_phone

BATCH = 500

How = Literal["reduce", "erase"]
Forgetter = Callable[[AsyncSession, int, int, How], Awaitable[None]]
"""(session, district_id, resident_id, how): remove what the module keeps of the person;
`reduce` may keep what carries no identity (the person's id for figures), `erase` nothing."""
_FORGETTERS: dict[str, Forgetter] = {}


def register_forgetter(name: str, forgetter: Forgetter) -> None:
    """A module's own forgetting of a person (registered in `app.extensions`; idempotent)."""
    _FORGETTERS[name] = forgetter


async def forget(session: AsyncSession, district_id: int, resident_id: int, how: How) -> None:
    """Every registered forgetter, in the caller's transaction (so all or nothing)."""
    for name in sorted(_FORGETTERS):
        await _FORGETTERS[name](session, district_id, resident_id, how)


_DUE = text(
    """
    SELECT id, district_id FROM residents
    WHERE status IN ('moved_away', 'deceased') AND moved_at < :cutoff AND reduced_at IS NULL
    ORDER BY moved_at LIMIT :n
    """
)
_REDUCE = text(
    """
    UPDATE residents SET name = NULL, id_enc = NULL, id_hash = NULL, id_masked = NULL,
        phone_enc = NULL, phone_hash = NULL, phone_masked = NULL, key_version = NULL,
        reduced_at = :now, updated_at = :now
    WHERE id = :id AND district_id = :d
    """
)
_FORGET = text(
    """
    UPDATE basedata_changes SET fields = '{}'
    WHERE district_id = :d AND object_type = 'resident' AND object_id = :id
    """
)


async def tick(session: AsyncSession, now: datetime) -> dict[str, Any]:
    cutoff = now - timedelta(days=get_settings().basedata_retention_days)
    due = list(await session.execute(_DUE, {"cutoff": cutoff, "n": BATCH}))
    for r in due:
        await session.execute(_REDUCE, {"id": r.id, "d": r.district_id, "now": now})
        await session.execute(_FORGET, {"id": r.id, "d": r.district_id})
        await forget(session, r.district_id, r.id, "reduce")
    return {"reduced_residents": len(due)}


async def rotate(session: AsyncSession, batch: int = 1000) -> dict[str, int]:
    """Re-seal every identity number and phone with the current key; recompute the hashes."""
    current = crypto.keyring().current
    counts = {"residents": 0, "organisations": 0}
    while True:
        rows = list(
            await session.execute(
                text(
                    "SELECT id, district_id, id_enc, phone_enc, key_version FROM residents "
                    "WHERE key_version IS NOT NULL AND key_version <> :v ORDER BY id LIMIT :n"
                ),
                {"v": current, "n": batch},
            )
        )
        if not rows:
            break
        for r in rows:
            binds: dict[str, Any] = {"id": r.id, "d": r.district_id, "v": current}
            for field, blob, col in (
                ("id_number", r.id_enc, "id"),
                ("phone", r.phone_enc, "phone"),
            ):
                clear = crypto.open_sealed(blob, field, r.key_version) if blob else None
                binds[f"{col}_enc"] = crypto.seal(clear, field, current)[0] if clear else None
                binds[f"{col}_hash"] = crypto.keyed_hash(clear, field) if clear else None
                binds[f"{col}_masked"] = (
                    (mask_id_number(clear) if col == "id" else mask_phone(clear)) if clear else None
                )
            await session.execute(
                text(
                    "UPDATE residents SET id_enc = :id_enc, id_hash = :id_hash, "
                    "id_masked = :id_masked, phone_enc = :phone_enc, phone_hash = :phone_hash, "
                    "phone_masked = :phone_masked, key_version = :v "
                    "WHERE id = :id AND district_id = :d"
                ),
                binds,
            )
        counts["residents"] += len(rows)
    while True:
        rows = list(
            await session.execute(
                text(
                    "SELECT id, district_id, phone_enc, key_version FROM organisations "
                    "WHERE key_version IS NOT NULL AND key_version <> :v ORDER BY id LIMIT :n"
                ),
                {"v": current, "n": batch},
            )
        )
        if not rows:
            break
        for r in rows:
            clear = crypto.open_sealed(r.phone_enc, "phone", r.key_version) if r.phone_enc else None
            await session.execute(
                text(
                    "UPDATE organisations SET phone_enc = :enc, phone_hash = :h, key_version = :v "
                    "WHERE id = :id AND district_id = :d"
                ),
                {
                    "enc": crypto.seal(clear, "phone", current)[0] if clear else None,
                    "h": crypto.keyed_hash(clear, "phone") if clear else None,
                    "v": current,
                    "id": r.id,
                    "d": r.district_id,
                },
            )
        counts["organisations"] += len(rows)
    return counts


async def rehash(session: AsyncSession, batch: int = 1000) -> int:
    """Recompute every keyed hash (after a new WANGGE_PII_HASH_KEY), key versions unchanged."""
    n, last = 0, 0
    while True:
        rows = list(
            await session.execute(
                text(
                    "SELECT id, district_id, id_enc, phone_enc, key_version FROM residents "
                    "WHERE key_version IS NOT NULL AND id > :last ORDER BY id LIMIT :n"
                ),
                {"last": last, "n": batch},
            )
        )
        if not rows:
            return n
        for r in rows:
            idn = crypto.open_sealed(r.id_enc, "id_number", r.key_version) if r.id_enc else None
            ph = crypto.open_sealed(r.phone_enc, "phone", r.key_version) if r.phone_enc else None
            await session.execute(
                text(
                    "UPDATE residents SET id_hash = :i, phone_hash = :p "
                    "WHERE id = :id AND district_id = :d"
                ),
                {
                    "i": crypto.keyed_hash(idn, "id_number") if idn else None,
                    "p": crypto.keyed_hash(ph, "phone") if ph else None,
                    "id": r.id,
                    "d": r.district_id,
                },
            )
        n += len(rows)
        last = rows[-1].id

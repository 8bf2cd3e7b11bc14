"""Case kinds built on the case engine (disputes): an extension point, registered from above.

A case kind that carries its own lifecycle on a case (a dispute: mediation, referral, follow-up,
closure only after the follow-ups hold) marks its cases (`cases.managed_by`, set by `mark` when
it opens one) and registers a `Manager` (`app.extensions`): the generic actions its cases refuse
and the stable error code of the refusal. The loop's one rule (`app.loop.actions.refusal`) asks
`refusal` here, so `perform` refuses those actions (409 with that code) and `allowed_actions`
does not offer them; marking a case as a duplicate (`app.cases.service.mark_duplicate`, which
closes it) asks it too. Neither the loop nor the cases import the kinds above them: they know a
case is managed, and by whom, only through the column and this registry. It lives here, beside
the table it reads, so that both layers reach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ApiError
from app.i18n import ACTION_LABELS, label


@dataclass(frozen=True)
class Manager:
    kind: str
    """The value of `cases.managed_by` (e.g. `dispute`)."""
    refuses: frozenset[str]
    """Generic actions that would bypass the kind's lifecycle: loop actions by name, and
    `marked_duplicate` (closing the case as a copy of another)."""
    code: str
    """The problem's stable code (registered with the kind's error codes)."""
    name: tuple[str, str]
    """What the kind is called (Chinese, English), for the refusal's detail."""
    instead: tuple[str, str]
    """Where the work is done instead (Chinese, English)."""


_MANAGERS: dict[str, Manager] = {}


def register_manager(manager: Manager) -> None:
    """Called from above (`app.extensions`); idempotent, one manager per kind."""
    if _MANAGERS.setdefault(manager.kind, manager) != manager:
        raise ValueError(f"case kind {manager.kind!r} is already managed")


def refusal(action: str, managed_by: str | None) -> ApiError | None:
    """Why a generic action may not run on a case its kind manages, or None."""
    m = _MANAGERS.get(managed_by) if managed_by is not None else None
    if m is None or action not in m.refuses:
        return None
    return ApiError(
        m.code,
        detail=f"该事件属于{m.name[0]}，须{m.instead[0]}，不能直接{label(ACTION_LABELS, action, 'zh')}",
        detail_en=f"The case is a {m.name[1]}: {m.instead[1]}; {action} is not allowed on it",
        extra={"managed_by": m.kind},
    )


_MARK = text(
    "UPDATE cases SET managed_by = :k WHERE id = :id AND district_id = :d AND managed_by IS NULL"
)


async def mark(session: AsyncSession, case: Any, kind: str) -> None:
    """The case is carried by a kind above the loop from now on (`case`: a row with `id` and
    `district_id`). Registered or not, the mark is kept: a kind registered later guards it."""
    await session.execute(_MARK, {"k": kind, "id": case.id, "d": case.district_id})

"""The loop's action registry and the one rule that says whether an action may run now.

`refusal(action, view, who, now)` is the only place that decides: `perform` runs an action only
when it answers None, and `allowed_actions` lists exactly the actions for which it answers None.
So an action that a case offers cannot then be refused (bug 4 of issue 16), and one it does not
offer answers 403 (role), 404 (scope) or 409 (state), as `perform` would.

The rule, in order: a post whose role the action's permission allows; a post of that role whose
scope covers the case (the policy's `covers`, as the route dependency checks it); the case's
status among the action's `from_states`; then the case kind's manager (`app.cases.managed`: a
dispute's case refuses the generic actions that would bypass the dispute's lifecycle); then the
action's own guard on the case's assignments (e.g. sign in only an assignment of yours that is
still `dispatched`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth import scope
from app.auth.policy import RULES, Principal
from app.auth.scope import covers
from app.cases import managed
from app.errors import ApiError
from app.i18n import ACTION_LABELS, STATUS_LABELS, label
from app.loop.registry import Registry


@dataclass(frozen=True)
class CaseView:
    """What the rule needs to know about a case: its state, its open assignments (rows of
    `case_assignments`, withdrawn ones left out, lead first) and its place in the area tree."""

    id: int
    status: str
    closed_at: datetime | None
    duplicate_of: int | None
    grid_id: int | None
    owner_id: int | None
    chain: tuple[int, ...]
    assignments: tuple[Any, ...]
    verifier_id: int | None = None
    """The worker a running verification task names (the grid's worker on duty when the case
    came to `feedback`, `app.worker_tasks.clock`), or None: any worker of the grid may verify."""
    managed_by: str | None = None
    """The case kind above the loop that carries its lifecycle on this case (`cases.managed_by`,
    e.g. a dispute), whose registered `app.cases.managed.Manager` refuses some generic actions."""

    @property
    def departments(self) -> list[int]:
        return [a.department_id for a in self.assignments]


@dataclass
class Ctx:
    session: AsyncSession
    case: Any
    view: CaseView
    who: Principal
    body: Any
    now: Any
    detail: dict[str, Any]
    to_status: str | None = None
    case_sets: dict[str, Any] | None = None


Handler = Callable[[Ctx], Awaitable[None]]
Guard = Callable[[CaseView, Principal, datetime], tuple[str, str] | None]
"""An action's own condition beyond its states: None, or why not (Chinese, English)."""


@dataclass(frozen=True)
class Action:
    name: str
    permission: str
    from_states: frozenset[str]
    body: type[BaseModel]
    handler: Handler
    summary: str
    department: bool = False
    """Done by a department to its own assignment."""
    guard: Guard | None = None


ACTIONS: Registry[Action] = Registry()


def action(
    name: str,
    permission: str,
    from_states: set[str],
    body: type[BaseModel],
    summary: str,
    department: bool = False,
    guard: Guard | None = None,
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ACTIONS.add(
            Action(name, permission, frozenset(from_states), body, fn, summary, department, guard)
        )
        return fn

    return register


def mine(assignments: Iterable[Any], who: Principal, states: Sequence[str]) -> Any | None:
    """The caller's assignment in one of these states: one of its departments', or for an
    administrator the lead's."""
    departments = {p.department_id for p in who.posts if p.department_id}
    for a in assignments:
        if a.state in states and (
            a.department_id in departments or (who.is_admin and a.role == "lead")
        ):
            return a
    return None


def extension_pending(a: Any) -> bool:
    return bool(a.extension) and a.extension.get("state") == "pending"


def refusal(spec: Action, view: CaseView, who: Principal, now: datetime) -> ApiError | None:
    """Why `who` may not run `spec` on this case now (403, 404 or 409), or None: the one rule."""
    rule = RULES[spec.permission]
    if not who.posts_for(rule):
        return ApiError(
            "forbidden",
            detail=f"当前岗位无权执行此操作（{spec.permission}）",
            detail_en=f"None of your posts allows this ({spec.permission})",
        )
    if not covers(who, rule, list(view.chain), view.grid_id, view.owner_id, view.departments):
        return ApiError(
            "not_found", detail=f"对象不存在：{view.id}", detail_en=f"Not found: {view.id}"
        )
    if view.status not in spec.from_states:
        return ApiError(
            "action_not_allowed",
            detail=f"事件处于「{label(STATUS_LABELS, view.status, 'zh')}」，"
            f"不能{label(ACTION_LABELS, spec.name, 'zh')}",
            detail_en=f"The case is {view.status}; {spec.name} is not allowed",
        )
    kept = managed.refusal(spec.name, view.managed_by)
    if kept is not None:
        return kept
    why = spec.guard(view, who, now) if spec.guard else None
    if why is not None:
        return ApiError("action_not_allowed", detail=why[0], detail_en=why[1])
    return None


def allowed_actions(view: CaseView, who: Principal, now: datetime) -> list[str]:
    """What the caller could do to the case now: exactly the actions `perform` would run."""
    return [a.name for a in ACTIONS.values() if refusal(a, view, who, now) is None]


_VIEWS = """
    SELECT now() AS now, c.id, c.status, c.closed_at, c.duplicate_of, c.grid_id,
           c.reporter_id AS owner_id, c.managed_by,
           array_remove(ARRAY[a1.id, a2.id, a3.id, a4.id], NULL) AS chain,
           vt.worker_id AS verifier_id
    FROM cases c
    -- At most one open verification per case (uq_worker_tasks_verification); a join, not a
    -- correlated subquery, so that on Citus one case's view stays a router statement.
    LEFT JOIN worker_tasks vt ON vt.case_id = c.id AND vt.district_id = c.district_id
         AND vt.kind = 'verification' AND vt.state IN ('open', 'accepted')
    LEFT JOIN areas a1 ON a1.id = coalesce(c.community_id, c.street_id, c.district_id)
    LEFT JOIN areas a2 ON a2.id = a1.parent_id
    LEFT JOIN areas a3 ON a3.id = a2.parent_id
    LEFT JOIN areas a4 ON a4.id = a3.parent_id
    WHERE {where}
"""
"""The area tree has four levels (the `level` check of `areas`): the chain is four joins up."""
_ASSIGNMENTS = """
    SELECT a.* FROM case_assignments a
    JOIN cases c ON c.id = a.case_id AND c.district_id = a.district_id
    WHERE {where} AND a.state <> 'withdrawn'
    ORDER BY a.case_id, a.role DESC, a.id
"""
# Many cases (a queue's page): by id. One case (its detail, an action): in its district, so that
# on Citus both statements go to the case's shard alone.
_MANY = "c.id = ANY(:ids)"
_ONE = "c.id = :id AND c.district_id = :district"
_VIEWS_MANY, _VIEWS_ONE = (text(_VIEWS.format(where=w)) for w in (_MANY, _ONE))
_ASSIGNMENTS_MANY, _ASSIGNMENTS_ONE = (text(_ASSIGNMENTS.format(where=w)) for w in (_MANY, _ONE))


async def case_views(db: AsyncSession | AsyncConnection, ids: Sequence[int]) -> dict[int, CaseView]:
    """The rule's view of each case, by id (two statements whatever the number of cases)."""
    return (await _views_at(db, ids))[0]


async def _views_at(
    db: AsyncSession | AsyncConnection, ids: Sequence[int]
) -> tuple[dict[int, CaseView], datetime | None]:
    """The views and the database's clock, read in the same two statements."""
    if not ids:
        return {}, None
    if len(ids) == 1:
        district = await scope.district_of(db, ids[0])
        if district is None:
            return {}, None
        params: dict[str, Any] = {"id": ids[0], "district": district}
        views_sql, assignments_sql = _VIEWS_ONE, _ASSIGNMENTS_ONE
    else:
        params = {"ids": list(ids)}
        views_sql, assignments_sql = _VIEWS_MANY, _ASSIGNMENTS_MANY
    by_case: dict[int, list[Any]] = {}
    for a in await db.execute(assignments_sql, params):
        by_case.setdefault(a.case_id, []).append(a)
    rows = list(await db.execute(views_sql, params))
    views = {
        r.id: CaseView(
            id=r.id,
            status=r.status,
            closed_at=r.closed_at,
            duplicate_of=r.duplicate_of,
            grid_id=r.grid_id,
            owner_id=r.owner_id,
            chain=tuple(r.chain or ()),
            assignments=tuple(by_case.get(r.id, ())),
            verifier_id=r.verifier_id,
            managed_by=r.managed_by,
        )
        for r in rows
    }
    return views, (rows[0].now if rows else None)


async def allowed_for(
    db: AsyncSession | AsyncConnection, ids: Sequence[int], who: Principal
) -> dict[int, list[str]]:
    """`allowed_actions` of many cases at once (the database's clock)."""
    views, now = await _views_at(db, ids)
    if not views or now is None:
        return {}
    return {i: allowed_actions(v, who, now) for i, v in views.items()}

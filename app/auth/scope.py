"""Who sees what: the one definition of the visibility of cases (and of places), for every reader.

**The rule** (the policy's `cases:read`, every role may hold it): a case is in a caller's scope
when the caller
- holds an admin post (everything), or
- reported it, or
- holds a post on one of its grids (grid workers and leaders), or
- holds a post on an area at or above its community, street or district (area staff: a post on an
  area covers that area and everything below it), or
- holds a department post and the case was dispatched to that department (not withdrawn).
Anonymous callers have no scope.

**Privacy classes**: what a reader *outside* a case's scope (anonymous, the public feeds, staff of
another place) may see of it is decided by its category's class (`PRIVATE_CLASSES`, setting
`open311_private_classes`, e.g. MD 矛盾纠纷 with 婚姻家庭纠纷, ZA 社会治安):
- a case of a public class: its `location` (point, address, grid), its `category` and its `text`
  (title, description), the text always through the PII detector (`app.pii.mask_text`);
- a case of a private class: none of these: no point, no address, no grid, no category (only its
  class), no text. Its number, status and dates stay (they reveal nothing about the person).
This is the ceiling: a reader may publish less (the OGC API publishes no text to the public),
never more. `tests/api/test_visibility_agreement.py` checks every reader against this module.

**For readers**:
- a loaded object: `covers(who, rule, chain, ...)` (the policy's check for objects in the path),
  `CaseScope.covers(CaseRef)` for a case or an event, `fields_for(in_scope, class_code)`;
- a list query: `CaseScope.sql(alias)` → a `Fragment` (SQL text with named binds `vis_*`),
  `CaseScope.events_sql(e, c)` for the events table (the stream's replays),
  `public_sql(class_alias)` for "a public reader may see this case's location and category";
- one prepared statement (tiles): `SCOPE_CTE` + `statement_sql(alias)`, always the same text, the
  caller bound by `statement_binds(scope)` (the area tree is walked inside the statement).
Identifiers (aliases) are checked against `IDENT`; values are only ever bind parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth import chains
from app.config import get_settings

if TYPE_CHECKING:
    from app.auth.policy import Principal, Rule

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,30}$")


def ident(name: str) -> str:
    """An SQL identifier (a table alias) written into a statement: never a value."""
    if not IDENT.match(name):
        raise ValueError(f"not an SQL identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Fragment:
    """A piece of SQL with named binds (`:name`) and their values."""

    sql: str
    binds: dict[str, Any] = field(default_factory=dict)


# --- objects in the path: their place in the area tree (statements in app.auth.chains) --------

PATH_OBJECTS = chains.PATH_OBJECTS
"""Path parameters that name an object whose place the policy checks."""


# --- the district of a case named by id ---------------------------------------------------------

_DISTRICT_OF = text("SELECT district_id FROM cases WHERE id = :id")


def _memo(session: AsyncSession | AsyncConnection) -> dict[int, int | None]:
    # Per request (the request's session), never per pooled connection.
    if isinstance(session, AsyncSession):
        memo: dict[int, int | None] = session.info.setdefault("case_districts", {})
        return memo
    return {}


def remember_district(
    session: AsyncSession | AsyncConnection, case_id: int, district_id: int | None
) -> None:
    _memo(session)[case_id] = district_id


async def district_of(session: AsyncSession | AsyncConnection, case_id: int) -> int | None:
    """The district of a case named by id alone (a path's `case_id`): the one statement of a
    request that cannot name the district (on Citus, one index probe on every shard); every
    statement after it filters on the district this returns (a router query). Remembered for
    the request's session (the policy's object chain fills it)."""
    memo = _memo(session)
    if case_id not in memo:
        memo[case_id] = (await session.execute(_DISTRICT_OF, {"id": case_id})).scalar()
    return memo[case_id]


async def object_chain(
    session: AsyncSession | AsyncConnection, kind: str, object_id: int
) -> tuple[bool, list[int], int | None, int | None, list[int]]:
    """(exists, the area ids from the object's area up to the root, its grid, its reporter,
    the departments it was dispatched to)."""
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    if kind == "case_id":
        district = await district_of(session, object_id)
        if district is None:
            return False, [], None, None, []
        row = (
            await conn.execute(chains.CASE_CHAIN_IN, {"id": object_id, "district": district})
        ).one()
    else:
        row = (await conn.execute(chains.CHAINS[kind], {"id": object_id})).one()
    return (
        bool(row.found),
        list(row.chain or []),
        row.grid_id,
        row.owner_id,
        list(row.departments or []),
    )


async def area_chain(session: AsyncSession | AsyncConnection, area_id: int) -> list[int]:
    return (await object_chain(session, "area_id", area_id))[1]


# --- the predicate for a loaded object ----------------------------------------------------------


def covers(
    who: Principal,
    rule: Rule,
    chain: list[int],
    grid_id: int | None = None,
    owner_id: int | None = None,
    departments: list[int] | None = None,
) -> bool:
    """Does a post allowed by `rule` cover an object in these areas (`chain`: its area and every
    area above it), or this grid, or a case dispatched to its department, or (when the rule lets
    the reporter act) a case the caller reported?"""
    if rule.owner_ok and owner_id is not None and owner_id == who.user_id:
        return True
    posts = [p for p in who.posts_for(rule) if p.role not in rule.own_only]
    if departments and any(p.department_id in departments for p in posts if p.department_id):
        return True
    if any(p.role == "admin" for p in posts):
        return True
    if {p.area_id for p in posts if p.area_id is not None}.intersection(chain):
        return True
    return grid_id is not None and any(grid_id in p.grid_ids for p in posts)


async def area_in_scope(
    session: AsyncSession | AsyncConnection, who: Principal | None, rule: Rule, area_id: int
) -> bool:
    """For areas named in a body (a parent, a community): may the caller act there?"""
    if who is None:
        return True
    return covers(who, rule, await area_chain(session, area_id))


# --- the scope of reading cases -----------------------------------------------------------------


class CaseLike(Protocol):
    """What the predicate needs to know of a case (a `CaseRef`, or an event about a case)."""

    @property
    def areas(self) -> frozenset[int]: ...
    @property
    def grid_id(self) -> int | None: ...
    @property
    def reporter_id(self) -> int | None: ...
    @property
    def departments(self) -> frozenset[int]: ...


@dataclass(frozen=True, slots=True)
class CaseRef:
    """What the predicate needs to know of a case (or of an event about one)."""

    areas: frozenset[int]
    """Its community, street and district (or its whole chain up to the root)."""
    grid_id: int | None = None
    reporter_id: int | None = None
    departments: frozenset[int] = frozenset()
    """Departments it is dispatched to (assignments not withdrawn)."""


@dataclass(frozen=True, slots=True)
class CaseScope:
    """The cases a caller may read. Built by `of` (areas = the caller's area posts) and
    completed by `resolve` (areas = those posts and every area below them)."""

    everything: bool = False
    user_id: int | None = None
    roots: frozenset[int] = frozenset()
    """Areas of the caller's area posts."""
    areas: frozenset[int] = frozenset()
    """The roots and, once resolved, every area below them."""
    grids: frozenset[int] = frozenset()
    departments: frozenset[int] = frozenset()
    resolved: bool = False

    @property
    def anonymous(self) -> bool:
        return not self.everything and self.user_id is None

    def covers(self, case: CaseLike) -> bool:
        """The predicate: is this case in the scope?"""
        return (
            self.everything
            or (case.reporter_id is not None and case.reporter_id == self.user_id)
            or (case.grid_id is not None and case.grid_id in self.grids)
            or not self.areas.isdisjoint(case.areas)
            or not self.roots.isdisjoint(case.areas)
            or not self.departments.isdisjoint(case.departments)
        )

    def sql(self, alias: str = "c", owner: str = "reporter_id") -> Fragment:
        """The predicate as an SQL condition on the case row `alias` (cases, or the evaluation
        facts, which carry the same columns). Terms the caller cannot match are left out, so a
        table without assignments (the monthly rollups) takes it when no department is named.
        Needs a resolved scope (the areas below the caller's posts as a bound array)."""
        if not self.resolved and self.roots:
            raise ValueError("resolve() the scope first: its areas are not expanded")
        if self.everything:
            return Fragment("true")
        a = ident(alias)
        terms = [f"{a}.{ident(owner)} = :vis_user"]
        binds: dict[str, Any] = {"vis_user": self.user_id if self.user_id is not None else 0}
        if self.grids:
            terms.append(f"{a}.grid_id = ANY(:vis_grids)")
            binds["vis_grids"] = sorted(self.grids)
        if self.areas:
            terms += [f"{a}.{col} = ANY(:vis_areas)" for col in _AREA_COLUMNS]
            binds["vis_areas"] = sorted(self.areas)
        if self.departments:
            terms.append(_dispatched(a, "ANY(:vis_depts)"))
            binds["vis_depts"] = sorted(self.departments)
        return Fragment("(" + " OR ".join(terms) + ")", binds)

    def events_sql(self, event: str = "e", case: str = "c") -> Fragment:
        """The predicate on the events table (`event`: the places and departments the case had
        when the event happened, as the stream's live fan-out sees them; `case`: its reporter)."""
        if self.everything:
            return Fragment("true")
        e, c = ident(event), ident(case)
        return Fragment(
            f"({c}.reporter_id = :vis_user OR {e}.grid_id = ANY(:vis_grids) "
            f"OR {e}.area_ids && CAST(:vis_areas AS bigint[]) "
            f"OR {e}.department_ids && CAST(:vis_depts AS bigint[]))",
            {
                "vis_user": self.user_id if self.user_id is not None else 0,
                "vis_grids": sorted(self.grids),
                "vis_areas": sorted(self.areas | self.roots),
                "vis_depts": sorted(self.departments),
            },
        )


_AREA_COLUMNS = ("community_id", "street_id", "district_id")


def _dispatched(a: str, depts: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM case_assignments va WHERE va.case_id = {a}.id "
        f"AND va.district_id = {a}.district_id AND va.state <> 'withdrawn' "
        f"AND va.department_id = {depts})"
    )


def of(who: Principal | None) -> CaseScope:
    """The caller's scope for reading cases, from their posts (no query)."""
    if who is None:
        return CaseScope()
    posts = who.posts
    if any(p.role == "admin" for p in posts):
        return CaseScope(everything=True, user_id=who.user_id, resolved=True)
    roots = frozenset(p.area_id for p in posts if p.area_id is not None)
    return CaseScope(
        user_id=who.user_id,
        roots=roots,
        areas=roots,
        grids=frozenset(g for p in posts for g in p.grid_ids),
        departments=frozenset(p.department_id for p in posts if p.department_id is not None),
        resolved=not roots,
    )


_BELOW = text(
    """
    WITH RECURSIVE below(id) AS (
        SELECT id FROM areas WHERE id = ANY(:roots)
        UNION ALL SELECT a.id FROM areas a JOIN below ON a.parent_id = below.id
    ) SELECT array_agg(id) FROM below
    """
)


async def resolve(conn: AsyncConnection | AsyncSession, who: Principal | None) -> CaseScope:
    """The caller's scope with the areas below their posts expanded (one query, none when the
    caller holds no area post)."""
    scope = of(who)
    if scope.resolved:
        return scope
    below = (await conn.execute(_BELOW, {"roots": sorted(scope.roots)})).scalar() or []
    return CaseScope(
        user_id=scope.user_id,
        roots=scope.roots,
        areas=frozenset(below) | scope.roots,
        grids=scope.grids,
        departments=scope.departments,
        resolved=True,
    )


async def resolve_rule(
    conn: AsyncConnection | AsyncSession, who: Principal, rule: Rule
) -> CaseScope:
    """The places a caller reaches under one rule (field work: patrols, check-ins, visits): the
    posts the rule allows, less those of its `own_only` roles, areas expanded; no departments.
    `.sql(alias, owner=...)` is then the condition on a row with the case's place columns
    (`grid_id`, `community_id`, `street_id`, `district_id`) and an owner column."""
    posts = [p for p in who.posts_for(rule) if p.role not in rule.own_only]
    if any(p.role == "admin" for p in posts):
        return CaseScope(everything=True, user_id=who.user_id, resolved=True)
    roots = frozenset(p.area_id for p in posts if p.area_id is not None)
    below: list[int] = []
    if roots:
        below = (await conn.execute(_BELOW, {"roots": sorted(roots)})).scalar() or []
    return CaseScope(
        user_id=who.user_id if rule.owner_ok else -1,
        roots=roots,
        areas=frozenset(below) | roots,
        grids=frozenset(g for p in posts for g in p.grid_ids),
        resolved=True,
    )


# --- the same predicate inside one prepared statement (tiles) -----------------------------------

SCOPE_CTE = """
WITH vis_below AS MATERIALIZED (
    SELECT a1.id FROM areas a1
    LEFT JOIN areas a2 ON a2.id = a1.parent_id LEFT JOIN areas a3 ON a3.id = a2.parent_id
    WHERE a1.id = ANY(CAST(:vis_roots AS bigint[]))
       OR a1.parent_id = ANY(CAST(:vis_roots AS bigint[]))
       OR a2.parent_id = ANY(CAST(:vis_roots AS bigint[]))
       OR a3.parent_id = ANY(CAST(:vis_roots AS bigint[]))
)
"""
"""Put first in a statement that uses `statement_sql`. The area tree has four levels: the areas
at or below the roots are those with a root among their first three ancestors (no recursive
CTE, which Citus runs beside distributed tables only with a filter on the district)."""


def below_cte(param: str = "area", name: str = "below") -> str:
    """`name(id) AS (…)`: the area bound as `:param` and every area below it, for a `WITH`
    beside distributed tables. The area tree has four levels, so those are the areas with the
    area itself or among their first three ancestors: no recursive CTE, which Citus runs beside
    distributed tables only with a filter on the district ("recursive CTEs are only supported
    when they contain a filter on the distribution column")."""
    return f"""{name}(id) AS (
        SELECT a1.id FROM areas a1
        LEFT JOIN areas a2 ON a2.id = a1.parent_id LEFT JOIN areas a3 ON a3.id = a2.parent_id
        WHERE CAST(:{param} AS bigint) IN (a1.id, a1.parent_id, a2.parent_id, a3.parent_id)
    )"""


_DISTRICTS_AT = text(
    """
    SELECT d.id FROM areas d
    WHERE d.level = 'district' AND (CAST(:area AS bigint) IN (d.id, d.parent_id) OR d.id IN (
        SELECT x.id FROM areas a JOIN areas p ON p.id = a.parent_id
        JOIN areas x ON x.id IN (p.id, p.parent_id) WHERE a.id = CAST(:area AS bigint)))
    ORDER BY d.id
    """
)


async def districts_at(conn: AsyncConnection | AsyncSession, area_id: int) -> list[int]:
    """The districts an area (`below_cte`'s root) lies in or holds: the district itself, the one
    above a street or community, the districts of a city. The binds of `district_id = ANY(…)`
    beside `below_cte` on the case side (one shard per district on Citus)."""
    return list((await conn.execute(_DISTRICTS_AT, {"area": area_id})).scalars())


def statement_sql(alias: str = "c") -> str:
    """The predicate as one constant condition (the same text for every caller, so a prepared
    statement is reused), binds as `statement_binds`; the statement starts with `SCOPE_CTE`."""
    a = ident(alias)
    below = "IN (SELECT id FROM vis_below)"
    return (
        f"(CAST(:vis_all AS boolean) OR {a}.reporter_id = CAST(:vis_user AS bigint) "
        f"OR {a}.grid_id = ANY(CAST(:vis_grids AS bigint[])) "
        + " ".join(f"OR {a}.{col} {below}" for col in _AREA_COLUMNS)
        + " OR "
        + _dispatched(a, "ANY(CAST(:vis_depts AS bigint[]))")
        + ")"
    )


def grid_statement_sql(grid: str = "g", community: str = "cm") -> str:
    """The places predicate inside one prepared statement for rows of a grid (`grid`: the grids
    row, `community`: its community's areas row), binds as `statement_binds` (the caller's scope
    under the rule, `resolve_rule`): everything, or one of the caller's grids, or at or below
    one of their area posts."""
    g, c = ident(grid), ident(community)
    below = "IN (SELECT id FROM vis_below)"
    return (
        f"(CAST(:vis_all AS boolean) OR {g}.id = ANY(CAST(:vis_grids AS bigint[])) "
        f"OR {c}.id {below} OR {c}.parent_id {below} "
        f"OR EXISTS (SELECT 1 FROM areas vs WHERE vs.id = {c}.parent_id AND vs.parent_id {below}))"
    )


def rule_statement_binds(who: Principal, rule: Rule) -> dict[str, Any]:
    """`grid_statement_sql`'s binds for the caller under one rule (no query: the statement walks
    the area tree itself)."""
    posts = [p for p in who.posts_for(rule) if p.role not in rule.own_only]
    return {
        "vis_all": any(p.role == "admin" for p in posts),
        "vis_grids": sorted({g for p in posts for g in p.grid_ids}),
        "vis_roots": sorted({p.area_id for p in posts if p.area_id is not None}),
    }


def statement_binds(scope: CaseScope) -> dict[str, Any]:
    return {
        "vis_all": scope.everything,
        "vis_user": scope.user_id if scope.user_id is not None else 0,
        "vis_grids": sorted(scope.grids),
        "vis_roots": sorted(scope.roots),
        "vis_depts": sorted(scope.departments),
    }


# --- privacy classes: what readers outside the scope may see ------------------------------------

FIELDS = frozenset({"location", "category", "text"})
"""`location`: the point, the address, the grid; `category`: the exact category (its class is
always shown); `text`: title and description (always PII-masked for them)."""


def private_classes() -> frozenset[str]:
    return frozenset(c for c in get_settings().open311_private_classes.split(",") if c)


def is_private(class_code: str | None) -> bool:
    return class_code in private_classes()


def public_fields(class_code: str | None) -> frozenset[str]:
    """What a reader outside a case's scope may see of it."""
    return frozenset() if is_private(class_code) else FIELDS


def fields_for(in_scope: bool, class_code: str | None) -> frozenset[str]:
    return FIELDS if in_scope else public_fields(class_code)


def public_sql(class_alias: str = "cat") -> Fragment:
    """SQL: a reader outside the scope may see this case's location and category (its category's
    class, `class_alias.class_code`, is not private)."""
    a = ident(class_alias)
    return Fragment(
        f"NOT ({a}.class_code = ANY(CAST(:vis_private AS text[])))",
        {"vis_private": sorted(private_classes())},
    )


# --- a person's own work (tasks, rosters, devices) ----------------------------------------------

# Up the area tree by joins rather than a recursive CTE (Citus cannot plan the recursive one
# beside its tables: "column start.id does not exist"): a start is at most a community, three
# levels below a district.
_DISTRICTS = text(
    """
    WITH start AS (
        SELECT unnest(CAST(:areas AS bigint[])) AS id
        UNION SELECT g.community_id FROM grids g WHERE g.id = ANY(CAST(:grids AS bigint[]))
        UNION SELECT d.district_id FROM departments d
              WHERE d.id = ANY(CAST(:depts AS bigint[])) AND d.district_id IS NOT NULL
    )
    SELECT coalesce(array_agg(DISTINCT x.id ORDER BY x.id), '{}')
    FROM start s
    JOIN areas a0 ON a0.id = s.id
    LEFT JOIN areas a1 ON a1.id = a0.parent_id
    LEFT JOIN areas a2 ON a2.id = a1.parent_id
    LEFT JOIN areas a3 ON a3.id = a2.parent_id
    CROSS JOIN LATERAL (VALUES (a0.id, a0.level), (a1.id, a1.level), (a2.id, a2.level),
                               (a3.id, a3.level)) AS x(id, level)
    WHERE x.level = 'district'
    """
)


async def districts_of(conn: AsyncConnection | AsyncSession, who: Principal) -> list[int]:
    """The districts the caller's posts lie in (an administrator: every district)."""
    if who.is_admin:
        return list(
            (
                await conn.execute(
                    text("SELECT id FROM areas WHERE level = 'district' ORDER BY id")
                )
            ).scalars()
        )
    posts = who.posts
    return list(
        (
            await conn.execute(
                _DISTRICTS,
                {
                    "areas": sorted({p.area_id for p in posts if p.area_id is not None}),
                    "grids": sorted({g for p in posts for g in p.grid_ids}),
                    "depts": sorted({p.department_id for p in posts if p.department_id}),
                },
            )
        ).scalar_one()
    )


def personal_work_sql(scope: CaseScope, alias: str = "t") -> Fragment:
    """Who sees a person's task (`worker_tasks`): the person; the staff of an area at or above
    its community (a resolved scope); the leaders of its grid; the department that pushed it
    down; an administrator everything. Pass `leader_scope(...)`: its grids are only those of
    the caller's grid-leader posts, so a grid worker sees only their own tasks."""
    if not scope.resolved and scope.roots:
        raise ValueError("resolve() the scope first: its areas are not expanded")
    if scope.everything:
        return Fragment("true")
    a = ident(alias)
    return Fragment(
        f"({a}.worker_id = :vis_user OR {a}.community_id = ANY(CAST(:vis_areas AS bigint[])) "
        f"OR {a}.grid_id = ANY(CAST(:vis_grids AS bigint[])) "
        f"OR {a}.department_id = ANY(CAST(:vis_depts AS bigint[])))",
        {
            "vis_user": scope.user_id if scope.user_id is not None else 0,
            "vis_areas": sorted(scope.areas | scope.roots),
            "vis_grids": sorted(scope.grids),
            "vis_depts": sorted(scope.departments),
        },
    )


def leader_scope(scope: CaseScope, who: Principal) -> CaseScope:
    """The scope with only the grids of the caller's grid-leader posts (a worker's grid posts
    let them read cases of the grid, not their colleagues' tasks)."""
    return CaseScope(
        everything=scope.everything,
        user_id=scope.user_id,
        roots=scope.roots,
        areas=scope.areas,
        grids=frozenset(g for p in who.posts if p.role == "grid_leader" for g in p.grid_ids),
        departments=scope.departments,
        resolved=scope.resolved,
    )


# --- a person's own field work (their work log, their live position) -------------------------

_WORKER_GRIDS = text(
    """
    SELECT DISTINCT pg.grid_id FROM posts po JOIN post_grids pg ON pg.post_id = po.id
    WHERE po.user_id = :u AND po.role IN ('grid_worker', 'grid_leader')
      AND po.starts_on <= current_date AND (po.ends_on IS NULL OR po.ends_on >= current_date)
    ORDER BY pg.grid_id
    """
)


async def worker_covered(
    session: AsyncSession | AsyncConnection, who: Principal, rule: Rule, worker_id: int
) -> bool:
    """May the caller read this grid worker's own field work (their work log)? When a post the
    rule allows is on an area at or above a grid the worker is posted to now (area staff: the
    workers of their areas), or the caller is an administrator. Grid posts of the caller do not
    count (a colleague's log is not a grid's)."""
    for grid_id in (await session.execute(_WORKER_GRIDS, {"u": worker_id})).scalars():
        found, chain, _, _, _ = await object_chain(session, "grid_id", int(grid_id))
        if found and covers(who, rule, chain):
            return True
    return False

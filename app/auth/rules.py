"""The policy table: which roles hold each permission, and whether it is scoped to places.
Routes never import this module: they take a dependency of `app.auth.policy`, which decides."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = (
    "grid_worker",
    "grid_leader",
    "community",
    "governance",
    "street",
    "department",
    "centre",
    "admin",
)
"""Every role a post can have (the one list: the posts' check, the API's enum, the CLI)."""
ALL_ROLES = frozenset(ROLES)
GOVERNANCE = "governance"
"""综治专干, the comprehensive-governance officer of a community or street (an area post): the
role that holds the sensitive tags (社区矫正, 精神障碍…) of the base data, and a mediator of
disputes. Not area staff: it does not triage cases or keep the community's other registers."""
AREA_STAFF = frozenset({"admin", "centre", "street", "community"})
CASE_STAFF = AREA_STAFF | {"grid_worker", "grid_leader"}


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str] | None
    """Roles that may call; None = anyone, signed in or not."""
    scoped: bool = False
    """Objects named in the path must lie in the caller's scope."""
    description: str = ""
    owner_ok: bool = False
    """The one who reported a case may do this to it even outside their scope."""
    api_key: bool = False
    """Authenticated by an integrator's Open311 `api_key` (query or form), not a bearer token."""
    rate: str | None = None
    """Rate-limited (`app.ratelimit.limits_for`): per account and per address; 429 when over."""
    own_only: frozenset[str] = frozenset()
    """Roles whose posts give no place scope under this rule: they reach only their own objects
    (with `owner_ok`), e.g. a grid worker and the patrols of colleagues in the same grid."""


RULES: dict[str, Rule] = {
    "public": Rule(None, description="anyone, no login"),
    "signed_in": Rule(ALL_ROLES, description="any signed-in user"),
    "events:stream": Rule(
        None,
        description="the live stream: browsers cannot send headers, so the stream itself checks "
        "a one-use ticket (or its cookie, or a bearer token) and answers 401 without one",
    ),
    "map:read": Rule(
        None,
        description="maps and the OGC API: anyone; a bearer token, when sent (and valid), "
        "adds the non-public fields of the cases in the caller's scope",
    ),
    "registry:read": Rule(ALL_ROLES, description="read areas, grids, buildings, departments"),
    "registry:report": Rule(AREA_STAFF, scoped=True, description="coverage, sizing, export"),
    "registry:write": Rule(
        frozenset({"admin", "centre"}), scoped=True, description="edit areas and grids, import"
    ),
    "buildings:write": Rule(AREA_STAFF, scoped=True, description="edit buildings"),
    "staff:read": Rule(AREA_STAFF | {"grid_leader"}, scoped=True, description="grid rosters"),
    "cases:report": Rule(CASE_STAFF, description="report a case", rate="intake"),
    "cases:read": Rule(ALL_ROLES, scoped=True, owner_ok=True, description="see a case"),
    "cases:work": Rule(
        CASE_STAFF, scoped=True, owner_ok=True, description="add photos, mark duplicates"
    ),
    "cases:place": Rule(
        frozenset({"admin", "centre"}), scoped=True, description="place an unlocated case in a grid"
    ),
    "loop:triage": Rule(AREA_STAFF, scoped=True, description="register, reject, reopen"),
    "loop:whistle": Rule(
        frozenset({"admin", "community"}),
        scoped=True,
        description="blow the whistle: call departments in (吹哨)",
    ),
    "loop:dispatch": Rule(
        frozenset({"admin", "centre", "street"}),
        scoped=True,
        description="dispatch, decide extensions, suspend and resume",
    ),
    "loop:department": Rule(
        frozenset({"admin", "department"}),
        scoped=True,
        description="sign in (报到), return, ask for more time, feed back",
    ),
    "loop:grid": Rule(
        frozenset({"admin", "grid_worker", "grid_leader", "community"}),
        scoped=True,
        description="handle on the spot, verify on site, record satisfaction",
    ),
    "webhooks:manage": Rule(
        frozenset({"admin", "department"}), description="a department's webhook subscriptions"
    ),
    "webhooks:monitor": Rule(frozenset({"admin"}), description="failing webhook deliveries"),
    "catalogue:write": Rule(frozenset({"admin"}), description="edit categories and routing"),
    "users:admin": Rule(frozenset({"admin"}), description="accounts and posts"),
    "departments:write": Rule(frozenset({"admin"}), description="edit departments"),
    "audit:read": Rule(frozenset({"admin"}), description="read the audit log"),
    "open311:public": Rule(None, description="Open311 GeoReport reads and the residents' QR form"),
    "open311:submit": Rule(
        None, api_key=True, description="post an Open311 service request with an integrator's key"
    ),
    "open311:keys": Rule(frozenset({"admin"}), description="issue and revoke Open311 API keys"),
    "community:read": Rule(
        AREA_STAFF,
        scoped=True,
        description="read a community's lists, meetings, tasks, matters, volunteers, ratings",
    ),
    "community:manage": Rule(
        frozenset({"admin", "community"}),
        scoped=True,
        description="keep the community's lists, big party committee, meetings, deliberation, "
        "dual registration",
    ),
    "community:rate": Rule(
        frozenset({"admin", "street", "community"}),
        scoped=True,
        description="two-way evaluation of member units (双向评议)",
    ),
    "community:collect": Rule(
        CASE_STAFF,
        scoped=True,
        description="collect residents' needs and proposals in a grid",
    ),
    "community:department": Rule(
        frozenset({"admin", "department"}),
        description="a department's own community tasks (it is a meeting's responsible unit)",
    ),
    "support:read": Rule(ALL_ROLES, description="browse the grid support list (网格支持清单)"),
    "support:publish": Rule(
        frozenset({"admin", "department"}),
        description="publish a department's support measures for grids",
    ),
    "stats:read": Rule(
        ALL_ROLES,
        scoped=True,
        description="evaluation figures over the cases the caller may list: centre and admin all, "
        "area staff and grid staff their places, a department its own figures",
    ),
    "patrols:field": Rule(
        frozenset({"grid_worker", "grid_leader"}),
        scoped=True,
        owner_ok=True,
        own_only=frozenset({"grid_worker", "grid_leader"}),
        description="start, feed, pause, resume and end one's own patrols (巡查)",
    ),
    "patrols:read": Rule(
        CASE_STAFF,
        scoped=True,
        owner_ok=True,
        own_only=frozenset({"grid_worker"}),
        description="read patrols and their tracks: a worker their own, leaders and area staff "
        "those of their grids",
    ),
    "fieldwork:record": Rule(
        frozenset({"grid_worker", "grid_leader"}),
        scoped=True,
        description="check in at a check-in point (打卡) and record a visit (走访) in one's grids",
    ),
    "fieldwork:read": Rule(
        CASE_STAFF,
        scoped=True,
        description="check-in points of a grid, visits to a building, check-ins and visits",
    ),
    "checkpoints:manage": Rule(
        frozenset({"admin", "street", "community"}),
        scoped=True,
        description="set up and retire a grid's check-in points",
    ),
    "coverage:read": Rule(
        AREA_STAFF | {"grid_leader"},
        scoped=True,
        description="coverage of grids by patrols, patrol hours against the standard, the "
        "coverage map",
    ),
    "worklog:read": Rule(
        AREA_STAFF,
        description="read a grid worker's work log (工作日志): area staff the workers posted in "
        "their areas",
    ),
    "positions:live": Rule(
        frozenset({"centre"}),
        scoped=True,
        description="the live positions of the workers of an area on patrol, during their duty "
        "time only (outside it nothing; ended patrols are history under patrols:read)",
    ),
    "duty:read": Rule(
        AREA_STAFF,
        scoped=True,
        description="read a community's duty roster (排班) and who is on duty in a grid",
    ),
    "duty:manage": Rule(
        frozenset({"admin", "street", "community"}),
        scoped=True,
        description="keep a community's duty roster",
    ),
    "tasks:mine": Rule(
        ALL_ROLES,
        description="one's own tasks, duty and push devices (/me/tasks, /me/duty, /me/push)",
    ),
    "tasks:assign": Rule(
        frozenset({"admin", "centre", "street", "community", "department"}),
        description="give a named worker (or the grid's worker on duty) a task",
    ),
    "tasks:read": Rule(
        AREA_STAFF | {"grid_leader", "department"},
        description="read workers' tasks: area staff below their areas, leaders their grids, "
        "a department the tasks it pushed down",
    ),
    "tasks:approve": Rule(
        frozenset({"admin", "street"}),
        description="approve or refuse a department's task outside the admission list (事务准入)",
    ),
    "admission:read": Rule(
        ALL_ROLES, description="read a district's admission list (事务准入清单) and its figures"
    ),
    "admission:manage": Rule(
        frozenset({"admin", "centre"}),
        scoped=True,
        description="publish a new version of a district's admission list",
    ),
    "basedata:read": Rule(
        CASE_STAFF | {"department", GOVERNANCE},
        scoped=True,
        description="the base data (人、地、事、物、组织) of one's grids or areas, masked; a department "
        "only the persons a case dispatched to it names; reveal a field with a purpose (audited)",
    ),
    "basedata:write": Rule(
        frozenset({"admin", "community", GOVERNANCE, "grid_worker", "grid_leader"}),
        scoped=True,
        description="keep the base data of one's grids: houses, households, residents, "
        "organisations, moves, imports; name a household or person in a case",
    ),
    "basedata:sensitive": Rule(
        frozenset({"admin", GOVERNANCE}),
        scoped=True,
        description="see and set sensitive tags (社区矫正, 精神障碍…) of residents in one's areas: "
        "their own role, the comprehensive-governance officer (综治专干)",
    ),
    "basedata:erase": Rule(
        frozenset({"admin", "community"}),
        scoped=True,
        description="carry out a deletion request: a person's data removed, an audited tombstone left",
    ),
    "basedata:catalogue": Rule(
        frozenset({"admin", "centre"}),
        scoped=True,
        description="keep a district's catalogue of care and attention tags",
    ),
    "disputes:read": Rule(
        CASE_STAFF | {GOVERNANCE},
        scoped=True,
        description="disputes (矛盾纠纷) of one's grids or areas, their figures; party names "
        "masked for the centre",
    ),
    "disputes:work": Rule(
        frozenset({"admin", "community", GOVERNANCE, "grid_worker", "grid_leader"}),
        scoped=True,
        description="screen, mediate, refer, follow up and close disputes in one's grids",
    ),
    "stats:configure": Rule(
        frozenset({"admin", "centre"}), description="rating thresholds and weights (考评标准)"
    ),
}

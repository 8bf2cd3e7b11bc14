"""Who sees what of a person in the base data (need-to-know, PIPL): the field-level rules beside
`app.auth.scope`, which decides whether the object is reached at all.

A caller reaches a resident through a post that covers it (the policy's scoped `basedata:read`:
grid workers and leaders their grids, area staff their areas, a department only the persons named
by a case dispatched to it). What the caller then sees:

| field | admin, community, governance, street, grid staff, department | centre |
|---|---|---|
| name | clear | masked (张**), clear once revealed |
| identity number, phone | masked, clear once revealed (a purpose, audited) | the same |
| ordinary tags | yes | yes |
| sensitive tags (社区矫正, 精神障碍…) | only with `basedata:sensitive`: their own role, the 综治专干 (governance), and admin | no |

A reveal names its fields and a purpose; it is audited (`pii_viewed`) like the other reveals.
Lists never reveal. Nothing of this leaves through tiles, OGC, Open311, webhooks or exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.auth.rules import RULES, Rule
from app.auth.scope import covers

if TYPE_CHECKING:
    from app.auth.policy import Principal

NAMES_CLEAR = frozenset(
    {"admin", "community", "governance", "street", "grid_worker", "grid_leader", "department"}
)
"""Roles that see names in clear (the centre sees figures, not names, unless revealed)."""
REVEALABLE = ("name", "id_number", "phone")


@dataclass(frozen=True)
class PersonView:
    name_clear: bool
    sensitive_tags: bool


def person_view(
    who: Principal, chain: list[int], grid_id: int | None, departments: list[int]
) -> PersonView:
    """How the caller sees a person at this place (`chain`: its areas; `departments`: those
    handling a case that names the person)."""
    read = RULES["basedata:read"]
    names = Rule(NAMES_CLEAR & (read.roles or frozenset()), scoped=True)
    return PersonView(
        name_clear=covers(who, names, chain, grid_id, None, departments),
        sensitive_tags=covers(who, RULES["basedata:sensitive"], chain, grid_id, None, []),
    )


def list_view(who: Principal, chain: list[int], grid_id: int) -> PersonView:
    """The same for a list of a grid's residents (no department reaches a list)."""
    return person_view(who, chain, grid_id, [])


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"

"""The comprehensive-governance officer (综治专干, role `governance`, issue 21): the role that holds
the sensitive tags of the base data (社区矫正, 精神障碍…; `basedata:sensitive`) and mediates
disputes, posted on a community or a street (an area post).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("grid_worker", "grid_leader", "community", "street", "department", "centre", "admin")
_NEW = (
    "grid_worker",
    "grid_leader",
    "community",
    "governance",
    "street",
    "department",
    "centre",
    "admin",
)
_AREA_OLD = ("community", "street", "centre")
_AREA_NEW = ("community", "governance", "street", "centre")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _set(roles: tuple[str, ...], area_roles: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_posts_role"), "posts", type_="check")
    op.drop_constraint(op.f("ck_posts_area_scope"), "posts", type_="check")
    op.create_check_constraint(op.f("ck_posts_role"), "posts", f"role IN ({_in(roles)})")
    op.create_check_constraint(
        op.f("ck_posts_area_scope"),
        "posts",
        f"(role IN ({_in(area_roles)})) = (area_id IS NOT NULL)",
    )


def upgrade() -> None:
    _set(_NEW, _AREA_NEW)


def downgrade() -> None:
    # a governance post becomes a post of its area's level (the posts' history stays)
    op.execute(
        "UPDATE posts p SET role = CASE a.level WHEN 'street' THEN 'street' ELSE 'community' END "
        "FROM areas a WHERE a.id = p.area_id AND p.role = 'governance'"
    )
    _set(_OLD, _AREA_OLD)

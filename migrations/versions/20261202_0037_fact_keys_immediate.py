"""The evaluation facts' keys checked at each statement again (issue 18).

0014 deferred the facts' keys to `cases` (`fk_stats_case_facts_id_cases`,
`fk_stats_dept_facts_id_cases`, `DEFERRABLE INITIALLY DEFERRED`) because the facts' own
triggers then rebuilt a moved case's rows after the statement that moved it. Those triggers are
gone (0025: the facts are written by `stats_refresh` from the views, which read the cases
themselves, so the key holds at the end of each statement). Deferred, every fact row a
transaction writes leaves a check pending until commit, and PostgreSQL refuses to `TRUNCATE` a
table with pending checks. On one PostgreSQL `stats_rebuild()` runs those checks first
(`SET CONSTRAINTS … IMMEDIATE`); on Citus that reaches only the coordinator, while the checks are
pending on the shards' own connections, so a rebuild in a transaction that had refreshed facts
failed ("cannot TRUNCATE "stats_case_facts_102848" because it has pending trigger events",
seen in `make test-citus`). Now:

- both keys are `DEFERRABLE INITIALLY IMMEDIATE` (dropped and added again: Citus refuses
  `ALTER CONSTRAINT` on a distributed table, and runs `ADD CONSTRAINT` only as a statement of
  its own);
- `stats_rebuild()` no longer defers them again when done (that would defer them for the rest of
  the caller's transaction);
- the move of a case to another district (plain PostgreSQL only, `cases_district_move_rows`)
  defers them with the other keys that pair the district: the moved case's facts hold again once
  a catch-up has refreshed it (its writer marks it changed), before commit.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = (
    ("stats_case_facts", "fk_stats_case_facts_id_cases"),
    ("stats_dept_facts", "fk_stats_dept_facts_id_cases"),
)
_DEFER_AGAIN = (
    "SET CONSTRAINTS fk_stats_case_facts_id_cases, fk_stats_dept_facts_id_cases DEFERRED;"
)


def _keys(initially: str) -> None:
    for table, name in KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (id, district_id) "
            f"REFERENCES cases (id, district_id) ON DELETE CASCADE DEFERRABLE INITIALLY {initially}"
        )


_MOVE_DEFERS = "SET CONSTRAINTS fk_case_events_case_id_cases,"
_FACT_NAMES = ", ".join(name for _, name in KEYS)


def _source(function: str) -> str:
    return str(
        op.get_bind()
        .execute(text(f"SELECT pg_get_functiondef('{function}()'::regprocedure)"))
        .scalar_one()
    )


def _replaced(function: str, old: str, new: str) -> None:
    source = _source(function)
    if old not in source:
        raise RuntimeError(f"{function}() is not the one this migration expects: {old!r}")
    op.execute(source.replace(old, new, 1))


def upgrade() -> None:
    _keys("IMMEDIATE")
    _replaced("stats_rebuild", _DEFER_AGAIN, "")
    _replaced(
        "cases_district_move_rows",
        _MOVE_DEFERS,
        _MOVE_DEFERS.replace("CONSTRAINTS ", f"CONSTRAINTS {_FACT_NAMES}, "),
    )


def downgrade() -> None:
    _replaced(
        "cases_district_move_rows",
        _MOVE_DEFERS.replace("CONSTRAINTS ", f"CONSTRAINTS {_FACT_NAMES}, "),
        _MOVE_DEFERS,
    )
    source = _source("stats_rebuild")
    at = source.rindex("END")  # the body's last line
    op.execute(source[:at] + _DEFER_AGAIN + "\n" + source[at:])
    _keys("DEFERRED")

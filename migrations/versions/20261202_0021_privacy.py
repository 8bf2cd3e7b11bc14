"""Lockout per user name and source address (issue 17).

- `login_failures`: failed logins of one user name (lower case, known or not) from one address,
  and until when that pair is locked. The login no longer locks the account itself from
  everywhere (`users.locked_until` stays, for the administrators' view and the unlock).

Revision ID: 0021
Revises: 0023
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE login_failures (
            username varchar(64) NOT NULL,
            source varchar(64) NOT NULL,
            failures integer NOT NULL DEFAULT 0,
            locked_until timestamptz,
            last_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (username, source)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS login_failures")

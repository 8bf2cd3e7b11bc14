"""Reliability: district on every case-side table, rate-limit counters (issue 11).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Case-side tables that hang off a case (case_id NOT NULL): their district is the case's.
CHILDREN = ("case_events", "case_assignments", "attachments")
# The outbox: an event about a case carries its district; a system event (no case) has none.
NULLABLE = ("events",)


def upgrade() -> None:
    # Rate limits: one row per key (account or address), fixed one-minute windows. UNLOGGED: a
    # crash resets the counters, which is harmless, and every hit skips the WAL.
    op.execute(
        """
        CREATE UNLOGGED TABLE rate_counters (
            key text PRIMARY KEY,
            window_start timestamptz NOT NULL,
            hits integer NOT NULL
        )
        """
    )

    # The district of every case: from its grid (intake), else the only/first district, so that
    # the district can become the distribution column (Citus) or a partition key.
    op.execute(
        """
        CREATE FUNCTION cases_district() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.district_id IS NULL THEN
                NEW.district_id := coalesce(
                    (SELECT s.parent_id FROM areas c JOIN areas s ON s.id = c.parent_id
                     WHERE c.id = NEW.community_id),
                    (SELECT id FROM areas WHERE level = 'district' ORDER BY id LIMIT 1));
                IF NEW.district_id IS NULL THEN
                    RAISE EXCEPTION 'no_district: a case needs a district and there is none'
                        USING ERRCODE = 'not_null_violation';
                END IF;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "UPDATE cases c SET district_id = coalesce("
        "(SELECT s.parent_id FROM areas cc JOIN areas s ON s.id = cc.parent_id "
        "WHERE cc.id = c.community_id), "
        "(SELECT id FROM areas WHERE level = 'district' ORDER BY id LIMIT 1)) "
        "WHERE district_id IS NULL"
    )
    op.execute(
        "CREATE TRIGGER cases_district BEFORE INSERT OR UPDATE OF district_id ON cases "
        "FOR EACH ROW EXECUTE FUNCTION cases_district()"
    )
    op.execute("ALTER TABLE cases ALTER COLUMN district_id SET NOT NULL")

    # Children take the case's district when the writer does not give it (every existing
    # INSERT keeps working), and follow the case if it ever moves to another district.
    op.execute(
        """
        CREATE FUNCTION district_from_case() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.district_id IS NULL AND NEW.case_id IS NOT NULL THEN
                SELECT district_id INTO NEW.district_id FROM cases WHERE id = NEW.case_id;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    for table in CHILDREN + NULLABLE:
        op.execute(f"ALTER TABLE {table} ADD COLUMN district_id bigint")
        op.execute(
            f"UPDATE {table} t SET district_id = c.district_id FROM cases c WHERE c.id = t.case_id"
        )
        if table in CHILDREN:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN district_id SET NOT NULL")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_district_id_areas "
            "FOREIGN KEY (district_id) REFERENCES areas(id)"
        )
        op.execute(
            f"CREATE TRIGGER {table}_district BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION district_from_case()"
        )
    # Case-side tables of the other issues (migrations 0007-0010, written in parallel): whatever
    # they declared, each table with a case_id gets the same guarantees here.
    bind = op.get_bind()
    others = bind.execute(
        sa.text(
            """
            SELECT c.table_name, c.is_nullable = 'NO' AS required,
                   EXISTS (SELECT 1 FROM information_schema.columns d
                           WHERE d.table_schema = 'public' AND d.table_name = c.table_name
                             AND d.column_name = 'district_id') AS has_district
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND c.column_name = 'case_id'
              AND t.table_type = 'BASE TABLE' AND NOT (c.table_name = ANY(:mine))
            ORDER BY 1
            """
        ),
        {"mine": list(CHILDREN + NULLABLE)},
    ).all()
    for table, required, has_district in others:
        if not has_district:
            op.execute(
                f'ALTER TABLE "{table}" ADD COLUMN district_id bigint '
                f'CONSTRAINT "fk_{table}_district_id_areas" REFERENCES areas(id)'
            )
        op.execute(
            f'UPDATE "{table}" t SET district_id = c.district_id FROM cases c '
            "WHERE c.id = t.case_id AND t.district_id IS NULL"
        )
        if required:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN district_id SET NOT NULL')
        op.execute(
            f'CREATE TRIGGER "{table}_district" BEFORE INSERT ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION district_from_case()"
        )

    moves = "\n".join(
        f'UPDATE "{t}" SET district_id = NEW.district_id WHERE case_id = NEW.id;'
        for t in (*CHILDREN, *NULLABLE, *(r[0] for r in others))
    )
    op.execute(
        f"""
        CREATE FUNCTION cases_district_moved() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {moves}
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER cases_district_moved AFTER UPDATE OF district_id ON cases FOR EACH ROW "
        "WHEN (OLD.district_id IS DISTINCT FROM NEW.district_id) "
        "EXECUTE FUNCTION cases_district_moved()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS cases_district_moved ON cases")
    op.execute("DROP FUNCTION IF EXISTS cases_district_moved()")
    others = op.get_bind().execute(
        sa.text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'case_id' AND NOT (table_name = ANY(:mine))"
        ),
        {"mine": list(CHILDREN + NULLABLE)},
    )
    for (table,) in others.all():
        op.execute(f'DROP TRIGGER IF EXISTS "{table}_district" ON "{table}"')
    for table in CHILDREN + NULLABLE:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_district ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS district_id")
    op.execute("DROP FUNCTION IF EXISTS district_from_case()")
    op.execute("ALTER TABLE cases ALTER COLUMN district_id DROP NOT NULL")
    op.execute("DROP TRIGGER IF EXISTS cases_district ON cases")
    op.execute("DROP FUNCTION IF EXISTS cases_district()")
    op.execute("DROP TABLE IF EXISTS rate_counters")

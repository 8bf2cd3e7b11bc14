"""Every case-side table carries the district (the future distribution column of Citus, and a
partition key), so that scaling out is configuration, not a rewrite.

The rule is generic, read from the catalogue: every table with a `case_id` column (added by any
issue, now or later) has a `district_id` column with a foreign key to `areas`, NOT NULL when
`case_id` is; the cases table's own `district_id` is NOT NULL; and a row written without a
district gets its case's.
"""

from __future__ import annotations

from sqlalchemy import text

_COLUMNS = text(
    """
    SELECT c.table_name, c.column_name, c.is_nullable = 'YES' AS nullable
    FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
      AND c.column_name IN ('case_id', 'district_id')
    """
)
_FK_TO_AREAS = text(
    """
    SELECT DISTINCT cl.relname
    FROM pg_constraint k
    JOIN pg_class cl ON cl.oid = k.conrelid
    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
    WHERE k.contype = 'f' AND k.confrelid = 'areas'::regclass AND a.attname = 'district_id'
    """
)


async def test_every_case_side_table_has_its_district(conn) -> None:
    cols: dict[str, dict[str, bool]] = {}
    for r in await conn.execute(_COLUMNS):
        cols.setdefault(r.table_name, {})[r.column_name] = r.nullable
    case_side = sorted(t for t, c in cols.items() if "case_id" in c)
    assert {"case_events", "case_assignments", "attachments", "events"} <= set(case_side)
    missing = [t for t in case_side if "district_id" not in cols[t]]
    assert missing == [], f"case-side tables without district_id: {missing}"
    nullable = [t for t in case_side if not cols[t]["case_id"] and cols[t]["district_id"]]
    assert nullable == [], f"district_id may be null where case_id may not: {nullable}"
    assert cols["cases"]["district_id"] is False
    with_fk = set((await conn.execute(_FK_TO_AREAS)).scalars())
    assert set(case_side) | {"cases"} <= with_fk


async def test_a_row_written_without_district_gets_the_cases(conn) -> None:
    row = (
        await conn.execute(
            text(
                "INSERT INTO cases (number, category_code, title, location) SELECT 'DIST-TEST', "
                "(SELECT code FROM categories ORDER BY code LIMIT 1), 'x', "
                "ST_SetSRID(ST_MakePoint(117, 28), 4326) RETURNING id, district_id"
            )
        )
    ).one()
    district = (
        await conn.execute(
            text("SELECT id FROM areas WHERE level = 'district' ORDER BY id LIMIT 1")
        )
    ).scalar()
    assert row.district_id == district
    ev = (
        await conn.execute(
            text(
                "INSERT INTO case_events (case_id, action) VALUES (:c, 'reported') "
                "RETURNING district_id"
            ),
            {"c": row.id},
        )
    ).scalar()
    assert ev == district
    # A case moved to another district takes its rows along.
    other = (
        await conn.execute(
            text(
                "INSERT INTO areas (level, code, name, boundary) VALUES ('district', '369999000000', "
                "'测试区', ST_Multi(ST_MakeEnvelope(118, 28, 118.1, 28.1, 4326))) RETURNING id"
            )
        )
    ).scalar()
    await conn.execute(
        text("UPDATE cases SET district_id = :d WHERE id = :c"), {"d": other, "c": row.id}
    )
    moved = (
        await conn.execute(
            text("SELECT district_id FROM case_events WHERE case_id = :c"), {"c": row.id}
        )
    ).scalar()
    assert moved == other

"""Every case-side table carries the district (the future distribution column of Citus, and a
partition key), in its keys too, so that scaling out is configuration, not a rewrite.

The rules are generic, read from the catalogue: every table with a `case_id` column (added by any
issue, now or later) has a `district_id` column with a foreign key to `areas`, NOT NULL when
`case_id` is; the cases table's own `district_id` is NOT NULL; and a row written without a
district gets its case's. The case-side tables (those, `cases`, and every table with a foreign key
to one of them) have the district in their primary key and in every unique index, and their
foreign keys to each other pair `district_id` with `district_id` (what Citus requires of
co-located distributed tables). A case moved to another district takes all its rows along.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.events.outbox import CHANGED_SQL
from tests.factories import insert_case

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
    # `case_changes` is a queue of cases whose facts are out of date: a deleted case's mark must
    # outlive it (its facts are removed by the catch-up), so no key ties it to cases or areas.
    # `event_intents` (the outbox, published by the relay) stays a plain table of the Citus
    # coordinator (migrations 0026, 0038): no key to `areas` (a reference table there).
    assert set(case_side) - {"case_changes", "event_intents"} | {"cases"} <= with_fk


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


_KEYS = text(
    """
    SELECT cl.relname AS tbl, k.contype::text AS kind, k.conname AS name, rc.relname AS ref,
           array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                 ORDER BY u.i)::text[] AS cols,
           array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n
                 ORDER BY u.i)::text[] AS ref_cols
    FROM pg_constraint k
    JOIN pg_class cl ON cl.oid = k.conrelid
    LEFT JOIN pg_class rc ON rc.oid = k.confrelid
    WHERE k.connamespace = 'public'::regnamespace AND k.contype IN ('p', 'u', 'f')
    """
)
_UNIQUE_INDEXES = text(
    """
    SELECT cl.relname AS tbl, ic.relname AS name,
           array(SELECT a.attname FROM unnest(i.indkey) u(n)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.n)::text[] AS cols
    FROM pg_index i JOIN pg_class cl ON cl.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indisunique AND cl.relnamespace = 'public'::regnamespace
    """
)


async def _case_side(conn) -> set[str]:
    """`cases`, every table with a case_id, and (transitively) every table with a foreign key to
    one of them."""
    tables = {"cases"} | {
        r.table_name for r in await conn.execute(_COLUMNS) if r.column_name == "case_id"
    }
    fks = [r for r in await conn.execute(_KEYS) if r.kind == "f"]
    while True:
        more = {r.tbl for r in fks if r.ref in tables} - tables
        if not more:
            return tables
        tables |= more


async def test_the_district_is_in_every_case_side_key(conn) -> None:
    side = await _case_side(conn)
    assert {
        "cases",
        "case_events",
        "case_assignments",
        "attachments",
        "events",
        "webhook_deliveries",
        "open311_requests",
        "stats_case_facts",
        "stats_dept_facts",
    } <= side
    keys = list(await conn.execute(_KEYS))
    no_pk = sorted(
        t
        for t in side
        if not any(k.tbl == t and k.kind == "p" and "district_id" in k.cols for k in keys)
    )
    assert no_pk == [], f"primary keys without district_id: {no_pk}"
    unique = [
        f"{r.tbl}.{r.name}"
        for r in await conn.execute(_UNIQUE_INDEXES)
        if r.tbl in side and "district_id" not in r.cols
    ]
    assert unique == [], f"unique indexes without district_id: {unique}"
    bad_fk = [
        k.name
        for k in keys
        if k.kind == "f"
        and k.tbl in side
        and k.ref in side
        and (
            "district_id" not in k.cols or k.ref_cols[k.cols.index("district_id")] != "district_id"
        )
    ]
    assert bad_fk == [], f"foreign keys between case-side tables without the district: {bad_fk}"
    nullable = [
        r.table_name
        for r in await conn.execute(_COLUMNS)
        if r.table_name in side and r.column_name == "district_id" and r.nullable
    ]
    assert nullable == [], f"district_id may be null: {nullable}"


async def _new_case(conn, number: str) -> int:
    return await insert_case(conn, None, number=number, title="x")


async def _other_district(conn) -> int:
    return (
        await conn.execute(
            text(
                "INSERT INTO areas (level, code, name, boundary) VALUES ('district', '369998000000', "
                "'测试二区', ST_Multi(ST_MakeEnvelope(118, 28, 118.1, 28.1, 4326))) RETURNING id"
            )
        )
    ).scalar_one()


async def test_a_row_cannot_name_another_districts_case(conn) -> None:
    case = await _new_case(conn, "DIST-KEY-1")
    other = await _other_district(conn)
    with pytest.raises(IntegrityError, match="fk_case_events_case_id_cases"):
        async with conn.begin_nested():
            await conn.execute(
                text(
                    "INSERT INTO case_events (case_id, district_id, action) "
                    "VALUES (:c, :d, 'reported')"
                ),
                {"c": case, "d": other},
            )


async def test_a_moved_case_takes_every_row_and_figure_along(conn) -> None:
    case = await _new_case(conn, "DIST-KEY-2")
    home = (
        await conn.execute(text("SELECT district_id FROM cases WHERE id = :c"), {"c": case})
    ).scalar_one()
    step = (
        await conn.execute(
            text("INSERT INTO case_events (case_id, action) VALUES (:c, 'reported') RETURNING id"),
            {"c": case},
        )
    ).scalar_one()
    await conn.execute(
        text(
            "INSERT INTO attachments (case_id, event_id, sha256, media_type, bytes, width, "
            "height) VALUES (:c, :e, repeat('a', 64), 'image/jpeg', 1, 1, 1)"
        ),
        {"c": case, "e": step},
    )
    dept = (await conn.execute(text("SELECT id FROM departments ORDER BY id LIMIT 1"))).scalar()
    await conn.execute(
        text(
            "INSERT INTO case_assignments (case_id, department_id, role, limits, sign_in_due) "
            "VALUES (:c, :d, 'lead', '{}', now())"
        ),
        {"c": case, "d": dept},
    )
    await conn.execute(
        text("INSERT INTO events (type, case_id) VALUES ('case.test', :c)"), {"c": case}
    )
    copy = await _new_case(conn, "DIST-KEY-3")
    await conn.execute(
        text("UPDATE cases SET duplicate_of = :o WHERE id = :c"), {"o": case, "c": copy}
    )
    received = text(
        "SELECT coalesce(sum(received), 0) FROM stats_case_monthly WHERE district_id = :d"
    )
    await conn.execute(text("SELECT stats_catch_up(NULL)"))  # as every reader of the figures
    home_before = (await conn.execute(received, {"d": home})).scalar_one()
    other = await _other_district(conn)

    await conn.execute(
        text("UPDATE cases SET district_id = :d WHERE id = :c"), {"d": other, "c": case}
    )
    # The writer marks the moved case (app.events.outbox.changed); a reader of the figures
    # catches up first (migration 0025).
    await conn.execute(text(CHANGED_SQL), {"ids": [case, copy]})
    await conn.execute(text("SELECT stats_catch_up(NULL)"))
    await conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # the facts' key, checked now

    rows = (
        await conn.execute(
            text(
                """
                SELECT (SELECT array_agg(DISTINCT district_id) FROM case_events
                        WHERE case_id = :c) AS steps,
                       (SELECT array_agg(DISTINCT district_id) FROM attachments
                        WHERE case_id = :c) AS photos,
                       (SELECT array_agg(DISTINCT district_id) FROM case_assignments
                        WHERE case_id = :c) AS assignments,
                       (SELECT array_agg(DISTINCT district_id) FROM events
                        WHERE case_id = :c) AS events,
                       (SELECT array_agg(DISTINCT district_id) FROM stats_case_facts
                        WHERE id = ANY(ARRAY[:c, :copy])) AS facts,
                       (SELECT district_id FROM cases WHERE id = :copy) AS copy
                """
            ),
            {"c": case, "copy": copy},
        )
    ).one()
    assert rows.steps == rows.photos == rows.assignments == rows.events == [other]
    assert rows.facts == [other]  # the merged copy follows its original
    assert rows.copy == other
    # The monthly rollups saw the move: what the home district lost, the other gained.
    moved = (await conn.execute(received, {"d": other})).scalar_one()
    assert moved >= 1
    assert (await conn.execute(received, {"d": home})).scalar_one() == home_before - moved

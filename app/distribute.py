"""`wangge distribute`: turn a migrated database on a Citus coordinator into the sharded schema.

The plan is read from the catalogue, so a table added by a later migration is placed too:

* **distributed** on `district_id`, co-located with `cases`: the case-side tables (`CASE_SIDE`)
  and any table with a foreign key to one of them (it must carry the district in that key, which
  `tests/reliability/test_district_keys.py` checks on plain PostgreSQL);
* **coordinator** tables (`COORDINATOR`): per-account and per-request bookkeeping that no case
  query joins (sign-in sessions, idempotency keys, rate counters, the audit chain). Those with a
  foreign key to a reference table become Citus local tables explicitly (Citus would otherwise do
  it silently when the referenced table becomes a reference table);
* **reference** tables: every other table (the registry, categories, webhook subscriptions,
  Open311 keys, the calendar, the community family): small, read by every shard's joins, copied
  to every node. They are created referenced-first (a foreign key's target before its source).

Idempotent: a table already placed as planned is left alone; a second run changes nothing.
Plain PostgreSQL (no `citus` extension) is refused with a clear message.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import is_citus

# Case-side tables: distributed on the district, co-located with `cases` (a case and all its
# rows live in one shard group, on one node).
CASE_SIDE = (
    "cases",
    "case_events",
    "case_assignments",
    "attachments",
    "events",
    "webhook_deliveries",
    "open311_requests",
    "case_changes",
    "stats_case_facts",
    "stats_dept_facts",
    "stats_case_monthly",
    "stats_dept_monthly",
    "stats_hotspot_monthly",
    # A district's base data (issue 18): houses, households and residents, organisations, the
    # disputes and their steps, patrols and their points, check-ins and visits. Large per district
    # and joined with the case side (`case_persons`), never across districts.
    "basedata_changes",
    "basedata_tombstones",
    "houses",
    "households",
    "residents",
    "household_members",
    "organisations",
    "disputes",
    "dispute_followups",
    "dispute_parties",
    "dispute_sessions",
    "patrols",
    "patrol_points",
    "patrol_cell_hits",
    "checkins",
    "visits",
)
# Kept on the coordinator: written per request or per account, never joined with case tables.
COORDINATOR = (
    "alembic_version",
    "audit_log",
    "event_intents",
    "auth_sessions",
    "refresh_tokens",
    "api_tokens",
    "idempotency_keys",
    "rate_counters",
    # The loaded years of the official calendar: its row triggers rewrite the reference table
    # `work_calendar` and refresh every shard's facts, which runs from the coordinator only.
    "work_schedules",
)
# Tables of extensions, never placed.
EXTENSION_TABLES = ("spatial_ref_sys",)
DISTRIBUTION_COLUMN = "district_id"


class NotCitus(RuntimeError):
    """The database has no `citus` extension (plain PostgreSQL)."""


@dataclass
class Plan:
    reference: list[str] = field(default_factory=list)
    distributed: list[str] = field(default_factory=list)
    coordinator: list[str] = field(default_factory=list)


@dataclass
class Report:
    created_reference: list[str] = field(default_factory=list)
    created_distributed: list[str] = field(default_factory=list)
    created_local: list[str] = field(default_factory=list)
    already: int = 0
    moved_districts: list[tuple[int, str]] = field(default_factory=list)
    workers: int = 0


_TABLES = text(
    """
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.objid = c.oid AND d.deptype = 'e')
    ORDER BY c.relname
    """
)
_FOREIGN = text(
    """
    SELECT src.relname AS src, dst.relname AS dst
    FROM pg_constraint k
    JOIN pg_class src ON src.oid = k.conrelid JOIN pg_class dst ON dst.oid = k.confrelid
    JOIN pg_namespace n ON n.oid = src.relnamespace
    WHERE k.contype = 'f' AND n.nspname = 'public' AND src.oid <> dst.oid
    """
)
# How each table is placed now: 'h' distributed, 'reference', 'local' (Citus local), or absent.
_PLACED = text(
    """
    SELECT logicalrelid::regclass::text AS tbl,
           CASE WHEN partmethod = 'h' THEN 'distributed'
                WHEN repmodel = 't' THEN 'reference' ELSE 'local' END AS kind
    FROM pg_dist_partition
    """
)


async def plan(conn: AsyncConnection) -> Plan:
    tables = [r[0] for r in await conn.execute(_TABLES) if r[0] not in EXTENSION_TABLES]
    refs: dict[str, set[str]] = defaultdict(set)  # table → the tables its keys reference
    for src, dst in await conn.execute(_FOREIGN):
        refs[src].add(dst)
    distributed = {t for t in CASE_SIDE if t in tables}
    grew = True
    while grew:  # anything with a key to a distributed table is distributed too
        grew = False
        for t in tables:
            if t not in distributed and t not in COORDINATOR and refs[t] & distributed:
                distributed.add(t)
                grew = True
    coordinator = [t for t in tables if t in COORDINATOR]
    rest = [t for t in tables if t not in distributed and t not in COORDINATOR]
    return Plan(
        reference=_referenced_first(rest, refs),
        distributed=_referenced_first(sorted(distributed, key=_case_first), refs),
        coordinator=coordinator,
    )


def _case_first(t: str) -> tuple[int, str]:
    return (0 if t == "cases" else 1, t)


def _referenced_first(tables: list[str], refs: dict[str, set[str]]) -> list[str]:
    """Order `tables` so that every table comes after the tables (among them) it references."""
    done: list[str] = []
    seen: set[str] = set()
    wanted = set(tables)

    def visit(t: str, path: frozenset[str]) -> None:
        if t in seen or t in path:
            return
        for d in sorted(refs[t] & wanted):
            visit(d, path | {t})
        seen.add(t)
        done.append(t)

    for t in tables:
        visit(t, frozenset())
    return done


async def distribute(conn: AsyncConnection, *, spread: bool = True) -> Report:
    """Place every table (see the module's docstring); `conn` is in a transaction that the
    caller commits. With `spread`, each district's shard group is then moved so that the
    districts are spread evenly over the workers (see `spread_districts`)."""
    if not await is_citus(conn):
        raise NotCitus(
            "the database has no citus extension: `wangge distribute` runs on a Citus "
            "coordinator (CREATE EXTENSION citus, workers added with citus_add_node)"
        )
    # An administrator's command: no statement limit (a reference table's copy to every node,
    # the keys put back), and the catalogue without the shards (the app's connections see them).
    await conn.execute(text("SET LOCAL statement_timeout = 0"))
    await conn.execute(text("SET LOCAL citus.override_table_visibility = on"))
    report = Report()
    report.workers = (
        await conn.execute(text("SELECT count(*) FROM citus_get_active_worker_nodes()"))
    ).scalar_one()
    p = await plan(conn)
    placed = {r.tbl: r.kind for r in await conn.execute(_PLACED)}
    # The co-located triggers (district fill, the append-only timeline, the evaluation facts)
    # are created on the shards too.
    await conn.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
    # Reference tables are created in one go; with several workers copying in parallel.
    await conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
    for t in p.reference:
        kind = placed.get(t)
        if kind == "reference":
            report.already += 1
            continue
        if kind == "local":  # turned into a Citus local table by an earlier reference table
            await conn.execute(text("SELECT undistribute_table(:t)"), {"t": t})
        await conn.execute(text("SELECT create_reference_table(:t)"), {"t": t})
        report.created_reference.append(t)
    todo = [t for t in p.distributed if placed.get(t) != "distributed"]
    report.already += len(p.distributed) - len(todo)
    # Citus distributes a table only when the keys between it and other local tables are gone:
    # the keys among the case-side tables are taken off, the tables distributed, then the very
    # same keys put back (now between co-located shards).
    keys = (
        (
            await conn.execute(
                text(
                    """
                    SELECT k.conrelid::regclass::text AS tbl, k.conname,
                           pg_get_constraintdef(k.oid) AS definition
                    FROM pg_constraint k
                    WHERE k.contype = 'f'
                      AND k.conrelid::regclass::text = ANY(:ts)
                      AND k.confrelid::regclass::text = ANY(:ts)
                    ORDER BY k.conname
                    """
                ),
                {"ts": p.distributed},
            )
        ).all()
        if todo
        else []
    )
    for k in keys:
        await conn.execute(text(f'ALTER TABLE "{k.tbl}" DROP CONSTRAINT "{k.conname}"'))
    for t in todo:
        await conn.execute(
            text("SELECT create_distributed_table(:t, :col, colocate_with => :with)"),
            {"t": t, "col": DISTRIBUTION_COLUMN, "with": "none" if t == "cases" else "cases"},
        )
        report.created_distributed.append(t)
    for k in keys:  # the catalogue's own text of each key, as it was
        await conn.execute(
            text(f'ALTER TABLE "{k.tbl}" ADD CONSTRAINT "{k.conname}" {k.definition}')
        )
    # Sync's number is the coordinator's (`sync_number()` in each UPDATE, migration 0032): the
    # fallback trigger would stamp the worker's own transaction id on the shard.
    enabled = (
        await conn.execute(
            text(
                "SELECT tgenabled <> 'D' FROM pg_trigger WHERE tgrelid = 'cases'::regclass "
                "AND tgname = 'cases_stamp_change'"
            )
        )
    ).scalar()
    if enabled:
        await conn.execute(text("ALTER TABLE cases DISABLE TRIGGER cases_stamp_change"))
    database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    # The co-located row triggers (the timeline's hash chain) read their own shard group from a
    # shard, and the calendar's triggers (a Citus local table's) refresh the facts of every
    # shard; Citus runs such nested statements only when this is on (set on the database,
    # propagated to the workers).
    await conn.execute(
        text(f'ALTER DATABASE "{database}" SET citus.allow_nested_distributed_execution = on')
    )
    before = placed
    placed = {r.tbl: r.kind for r in await conn.execute(_PLACED)}
    for t in p.coordinator:
        if t in before:
            report.already += 1
            continue
        if t in placed:  # made a Citus local table by its key to a new reference table
            report.created_local.append(t)
            continue
        has_ref_key = (
            await conn.execute(
                text(
                    "SELECT 1 FROM pg_constraint WHERE contype = 'f' "
                    "AND conrelid = CAST(:t AS regclass)"
                ),
                {"t": t},
            )
        ).scalar()
        if has_ref_key:
            await conn.execute(text("SELECT citus_add_local_table_to_metadata(:t)"), {"t": t})
            report.created_local.append(t)
    return report


async def spread_districts(conn: AsyncConnection) -> list[tuple[int, str]]:
    """Move shard groups so that the districts are spread evenly over the workers: district by
    district (by id), the shard group holding it goes to the worker holding the fewest districts
    so far, unless another district already placed shares that shard (hash collision). Returns
    the (district id, worker) of every move. Runs outside a transaction block (shard moves
    commit on their own)."""
    districts = [
        r[0]
        for r in await conn.execute(
            text("SELECT id FROM areas WHERE level = 'district' ORDER BY id")
        )
    ]
    workers = [
        f"{r.node_name}:{r.node_port}"
        for r in await conn.execute(
            text(
                "SELECT node_name, node_port FROM citus_get_active_worker_nodes() "
                "ORDER BY node_port, node_name"
            )
        )
    ]
    if not workers or not districts:
        return []
    load = {w: 0 for w in workers}
    fixed: dict[int, str] = {}  # shard id → worker chosen
    moves: list[tuple[int, str]] = []
    for d in districts:
        row = (
            await conn.execute(
                text(
                    """
                    SELECT s.shardid, p.nodename || ':' || p.nodeport AS worker,
                           p.nodename, p.nodeport
                    FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid
                    JOIN pg_dist_node p ON p.groupid = pl.groupid
                    WHERE s.logicalrelid = 'cases'::regclass
                      AND s.shardid = get_shard_id_for_distribution_column('cases', CAST(:d AS bigint))
                    """
                ),
                {"d": d},
            )
        ).one()
        if row.shardid in fixed:
            load[fixed[row.shardid]] += 1
            continue
        target = min(workers, key=lambda w: (load[w], w != row.worker, w))
        if target != row.worker:
            host, port = target.rsplit(":", 1)
            await conn.execute(
                text(
                    "SELECT citus_move_shard_placement(:s, :fh, :fp, :th, :tp, "
                    "shard_transfer_mode => 'block_writes')"
                ),
                {
                    "s": row.shardid,
                    "fh": row.nodename,
                    "fp": row.nodeport,
                    "th": host,
                    "tp": int(port),
                },
            )
            moves.append((d, target))
        fixed[row.shardid] = target
        load[target] += 1
    return moves

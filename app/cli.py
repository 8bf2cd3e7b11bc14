"""The `wangge` command: prestart (wait, migrate, seed), grid import/export, coverage checks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from app.auth.rules import ROLES


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


async def _wait_for_db(timeout: float) -> None:
    from sqlalchemy import text

    from app.db import db

    deadline = time.monotonic() + timeout
    while True:
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return
        except Exception as e:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"wangge: database not reachable after {timeout:.0f} s: {e}"
                ) from e
            await asyncio.sleep(1)


async def _seed(second_district: bool = False) -> None:
    from app.db import db
    from app.demo.load import load_demo
    from app.demo.second_district import load_second_district

    async with db.engine.begin() as conn:
        report = await load_demo(conn)
        if second_district:
            n = await load_second_district(conn)
            print(f"wangge: second demo district 另一区 loaded (+{n} areas)")
    print(
        f"wangge: demo district loaded (+{report.areas} areas, +{report.grids} grids, "
        f"+{report.buildings} buildings, +{report.departments} departments, "
        f"+{report.categories} categories, "
        f"+{report.accounts} demo accounts, +{report.roster} roster staff, "
        f"+{report.residents} demo residents, +{report.disputes} demo disputes)"
    )


async def _seed_history(n: int, events: bool) -> int:
    from app.db import db
    from app.demo.history import generate_history

    async with db.engine.begin() as conn:
        report = await generate_history(conn, n, events=events)
    _print(report)
    return 0


async def _stats_rebuild() -> int:
    from sqlalchemy import text

    from app.config import get_settings
    from app.db import db
    from app.stats.worktime import sync_calendar

    async with db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        days = await sync_calendar(conn)
        await conn.execute(text("SELECT stats_rebuild()"))
        n = (await conn.execute(text("SELECT count(*) FROM stats_case_facts"))).scalar_one()
    print(
        f"wangge: working calendar synced ({days} days, office hours "
        f"{get_settings().office_hours}); evaluation facts rebuilt ({n} cases)"
    )
    return 0


async def _stats_compact() -> int:
    from sqlalchemy import text

    from app.db import db

    async with db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        a = (await conn.execute(text("SELECT stats_case_monthly_compact()"))).scalar_one()
        b = (await conn.execute(text("SELECT stats_dept_monthly_compact()"))).scalar_one()
        c = (await conn.execute(text("SELECT stats_hotspot_monthly_compact()"))).scalar_one()
    print(f"wangge: evaluation rollups compacted ({a} + {b} + {c} rows)")
    return 0


async def _prestart(seed: bool, timeout: float) -> None:
    from app.config import get_settings
    from app.db import db
    from app.migrate import upgrade

    await _wait_for_db(timeout)
    await asyncio.to_thread(upgrade, get_settings().database_url)
    print("wangge: migrations at head")
    if seed:
        await _seed()
    await db.dispose()


async def _import(path: Path, repair: bool, mode: str, crs: str) -> int:
    from app.db import db, unit_of_work
    from app.errors import ApiError
    from app.geometry import CRS
    from app.grids.transfer import import_grids

    fc = orjson.loads(path.read_bytes())
    try:
        async with unit_of_work() as session:
            report = await import_grids(session, fc, crs=CRS(crs), repair=repair, mode=mode)  # type: ignore[arg-type]
    except ApiError as e:
        _print(e.body("zh"))
        return 1
    await db.dispose()
    _print(report.__dict__)
    return 0


async def _export(area_code: str | None, crs: str) -> int:
    from sqlalchemy import select

    from app.areas.models import Area
    from app.db import db, unit_of_work
    from app.geometry import CRS
    from app.grids.transfer import export_grids

    async with unit_of_work() as session:
        area_id = None
        if area_code:
            area_id = (
                await session.execute(select(Area.id).where(Area.code == area_code))
            ).scalar()
            if area_id is None:
                print(f"wangge: no area with code {area_code}", file=sys.stderr)
                return 1
        fc = await export_grids(session, area_id=area_id, crs=CRS(crs))
    await db.dispose()
    sys.stdout.buffer.write(orjson.dumps(fc) + b"\n")
    return 0


async def _create_user(args: argparse.Namespace) -> int:
    import getpass
    import os

    from app.db import db, unit_of_work
    from app.errors import ApiError
    from app.users.schemas import PostIn, UserCreate
    from app.users.service import create_user

    password = os.environ.get("WANGGE_NEW_PASSWORD") or getpass.getpass("Password: ")
    post: dict[str, Any] = {"role": args.role}
    if args.area:
        post["area_id"] = args.area
    if args.department:
        post["department_id"] = args.department
    if args.grid:
        post["grid_ids"] = args.grid
    try:
        data = UserCreate(
            username=args.username,
            display_name=args.name or args.username,
            password=password,
            mobile=args.mobile,
            posts=[PostIn(**post)],
        )
        async with unit_of_work() as session:
            user = await create_user(session, data, None, None)
    except ApiError as e:
        _print(e.body("zh"))
        return 1
    except ValueError as e:
        print(f"wangge: {e}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    print(f"wangge: created user {user.username} (id {user.id})")
    return 0


async def _verify_audit() -> int:
    from app.audit.service import verify_chain
    from app.db import db, unit_of_work

    async with unit_of_work() as session:
        checked, broken = await verify_chain(session)
    await db.dispose()
    if broken:
        _print({"ok": False, "checked": checked, "broken": broken})
        return 1
    print(f"wangge: audit chain intact ({checked} rows)")
    return 0


async def _load_calendar(path: Path) -> int:
    from app.db import db, unit_of_work
    from app.loop.deadlines import load_year
    from app.worktime.calendar import YearSchedule

    try:
        ys = YearSchedule.from_json(orjson.loads(path.read_bytes()))
    except (ValueError, TypeError, orjson.JSONDecodeError) as e:
        print(f"wangge: invalid schedule: {e}", file=sys.stderr)
        return 1
    async with unit_of_work() as session:
        n = await load_year(session, ys, None)
    await db.dispose()
    print(
        f"wangge: {ys.year} loaded ({len(ys.holidays)} holidays, {len(ys.workdays)} make-up "
        f"working days); {n} provisional deadlines recomputed"
    )
    return 0


async def _distribute(spread: bool) -> int:
    from app.db import db
    from app.distribute import NotCitus, distribute, spread_districts

    try:
        async with db.engine.begin() as conn:
            report = await distribute(conn)
    except NotCitus as e:
        print(f"wangge: {e}", file=sys.stderr)
        await db.dispose()
        return 2
    moves: list[tuple[int, str]] = []
    if spread:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            moves = await spread_districts(conn)
    await db.dispose()
    print(
        f"wangge: distributed over {report.workers} workers: "
        f"{len(report.created_reference)} reference tables created, "
        f"{len(report.created_distributed)} distributed tables created (on district_id, "
        f"co-located with cases), {len(report.created_local)} coordinator tables added, "
        f"{report.already} tables already in place; "
        f"{len(moves)} district shard groups moved"
        + "".join(f"\n  district {d} → {w}" for d, w in moves)
    )
    return 0


async def _purge() -> int:
    from app.auth.service import purge_login_failures
    from app.db import db
    from app.idempotency import purge
    from app.ratelimit import purge as purge_counters

    async with db.engine.begin() as conn:
        n = await purge(conn)
        k = await purge_counters(conn)
        f = await purge_login_failures(conn)
    await db.dispose()
    print(
        f"wangge: forgot {n} expired idempotency keys, {k} idle rate-limit counters and "
        f"{f} stale login failures"
    )
    return 0


async def _rotate_keys(rehash: bool) -> int:
    from app.basedata import crypto, retention
    from app.db import db, unit_of_work

    async with unit_of_work() as session:
        counts = await retention.rotate(session)
        hashed = await retention.rehash(session) if rehash else 0
    await db.dispose()
    print(
        f"wangge: re-encrypted {counts['residents']} residents and {counts['organisations']} "
        f"organisations with key version {crypto.keyring().current}; re-hashed {hashed}"
    )
    return 0


async def _import_basedata(args: argparse.Namespace) -> int:
    """A ledger into a grid, as an admin account, with progress on stderr."""
    import sys
    import uuid

    from sqlalchemy import text

    from app.auth.policy import PostScope, Principal
    from app.basedata import importer
    from app.basedata.ledger import read_rows
    from app.db import db, unit_of_work
    from app.errors import ApiError

    def progress(phase: str, done: int, total: int) -> None:
        print(f"{phase} {done:,}/{total:,}", file=sys.stderr, flush=True)

    async with unit_of_work() as session:
        u = (
            await session.execute(
                text(
                    "SELECT u.id, u.username, u.display_name, p.id AS post FROM users u "
                    "JOIN posts p ON p.user_id = u.id AND p.role = 'admin' WHERE u.username = :u"
                ),
                {"u": args.user},
            )
        ).first()
        grid = (
            await session.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": args.grid})
        ).scalar()
        if u is None or grid is None:
            print("wangge: --user must be an admin account and --grid a grid code", file=sys.stderr)
            return 2
        who = Principal(
            u.id,
            u.username,
            u.display_name,
            uuid.uuid4(),
            [PostScope(u.post, "admin", None, None, frozenset())],
        )
        table = list(read_rows(args.file.read_bytes(), args.file.name))
        mapping = orjson.loads(args.mapping) if args.mapping else None
        try:
            plan, district = await importer.validate(
                session, grid, table, mapping, who, args.create_houses, progress
            )
            if plan.error_count:
                raise importer.report(plan)
        except ApiError as e:
            _print(e.body("zh"))
            await db.dispose()
            return 1
        counts = {"households": len(plan.households), "residents": plan.rows}
        if not args.dry_run:
            counts = await importer.apply(session, plan, district, grid, who, progress)
    await db.dispose()
    _print({"dry_run": args.dry_run, "rows": plan.rows, **counts})
    return 0


async def _basedata_retention() -> int:
    from datetime import UTC, datetime

    from app.basedata import retention
    from app.db import db, unit_of_work

    total = 0
    while True:
        async with unit_of_work() as session:
            n = (await retention.tick(session, datetime.now(UTC)))["reduced_residents"]
        total += n
        if n < retention.BATCH:
            break
    await db.dispose()
    print(f"wangge: reduced {total} residents who moved away to figures")
    return 0


def check_coverage_file(
    path: Path, parents: Path | None, sliver_m2: float, report: Path | None
) -> int:
    """Offline coverage check of a grid file, community by community. Exit 1 when any fails."""
    from shapely.geometry import shape

    from geo.coverage import check_coverage

    fc = orjson.loads(path.read_bytes())
    groups: dict[str, list[tuple[str, Any]]] = {}
    for i, f in enumerate(fc.get("features", [])):
        props = f.get("properties") or {}
        code = str(props.get("code") or f.get("id") or i)
        groups.setdefault(str(props.get("community_code") or ""), []).append(
            (code, shape(f["geometry"]))
        )
    parent_geoms: dict[str, Any] = {}
    if parents:
        for f in orjson.loads(parents.read_bytes()).get("features", []):
            parent_geoms[str((f.get("properties") or {}).get("code"))] = shape(f["geometry"])
    failed = 0
    features: list[dict[str, Any]] = []
    for community, children in sorted(groups.items()):
        rep = check_coverage(children, parent_geoms.get(community), sliver_m2=sliver_m2)
        fc_rep = rep.to_geojson()
        for feat in fc_rep["features"]:
            feat.setdefault("properties", {})["community_code"] = community
        features.extend(fc_rep["features"])
        status = "ok" if rep.ok else "FAIL"
        failed += 0 if rep.ok else 1
        print(
            f"{status:4} community {community or '-'}: {len(children)} grids, "
            f"{len(rep.overlaps)} overlaps, {len(rep.gaps)} gaps, {len(rep.outside)} outside"
        )
    if report:
        report.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    print(f"{len(groups) - failed} of {len(groups)} communities pass")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="wangge", description="wangge grid-management backend")
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("prestart", help="wait for the database, migrate, load the demo district")
    ps.add_argument("--no-seed", action="store_true", help="do not load the demo district")
    ps.add_argument("--timeout", type=float, default=60.0)
    sub.add_parser("migrate", help="alembic upgrade head")
    sd = sub.add_parser("seed-demo", help="load the demo district (idempotent)")
    sd.add_argument(
        "--second-district",
        action="store_true",
        help="also the small second district 另一区 (a city on Citus: make test-citus)",
    )
    imp = sub.add_parser("import-grids", help="import grids from a GeoJSON file (all or nothing)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--repair", action="store_true", help="repair invalid rings, report changes")
    imp.add_argument("--mode", choices=["create", "upsert"], default="create")
    imp.add_argument("--crs", choices=["wgs84", "gcj02", "bd09", "cgcs2000"], default="wgs84")
    exp = sub.add_parser("export-grids", help="write live grids as GeoJSON to stdout")
    exp.add_argument("--area", help="only grids in the area with this code")
    exp.add_argument("--crs", choices=["wgs84", "gcj02", "bd09", "cgcs2000"], default="wgs84")
    cov = sub.add_parser("check-coverage", help="check a grid GeoJSON file for gaps and overlaps")
    cov.add_argument("file", type=Path)
    cov.add_argument("--parents", type=Path, help="GeoJSON of communities (property `code`)")
    cov.add_argument("--sliver-m2", type=float, default=1.0)
    cov.add_argument("--report", type=Path, help="write the findings as GeoJSON here")
    cu = sub.add_parser(
        "create-user",
        help="create an account with one post (password from WANGGE_NEW_PASSWORD or a prompt)",
    )
    cu.add_argument("username")
    cu.add_argument("--name", help="display name")
    cu.add_argument(
        "--role",
        required=True,
        choices=list(ROLES),
    )
    cu.add_argument(
        "--area", type=int, help="area id (community, governance, street, centre posts)"
    )
    cu.add_argument("--department", type=int, help="department id (department posts)")
    cu.add_argument("--grid", type=int, action="append", help="grid id (repeatable)")
    cu.add_argument("--mobile")
    lc = sub.add_parser("load-calendar", help="load a year's official holiday schedule (JSON)")
    lc.add_argument("file", type=Path)
    sub.add_parser(
        "purge", help="forget expired idempotency keys and idle rate counters (run daily)"
    )
    sh = sub.add_parser(
        "seed-history", help="add a year of synthetic cases to the demo district (evaluation demo)"
    )
    sh.add_argument("--cases", type=int, default=5000, help="how many (default 5,000)")
    sh.add_argument("--no-events", action="store_true", help="no timeline steps (faster)")
    sub.add_parser(
        "stats-compact", help="merge the evaluation rollups' deltas (run daily, e.g. cron)"
    )
    sub.add_parser(
        "stats-rebuild",
        help="re-sync working hours (WANGGE_OFFICE_HOURS, loaded years) and rebuild the "
        "evaluation facts from scratch",
    )
    dist = sub.add_parser(
        "distribute",
        help="on a Citus coordinator: reference tables, then the case-side tables distributed "
        "on district_id (idempotent)",
    )
    dist.add_argument(
        "--no-spread", action="store_true", help="do not move districts' shard groups"
    )
    sub.add_parser("verify-audit", help="recompute the audit log's hash chain; exit 1 if broken")
    rk = sub.add_parser(
        "rotate-keys",
        help="re-encrypt the base data's ID numbers and phones with the newest WANGGE_PII_KEYS key",
    )
    rk.add_argument(
        "--rehash", action="store_true", help="also recompute the keyed hashes (new hash key)"
    )
    ib = sub.add_parser(
        "import-basedata", help="import a ledger (台账, XLSX/CSV) into a grid, all or nothing"
    )
    ib.add_argument("file", type=Path)
    ib.add_argument("--grid", required=True, help="the grid's code")
    ib.add_argument("--user", required=True, help="an admin account (the change history's actor)")
    ib.add_argument("--mapping", help='JSON: field → header, e.g. {"id_number": "证件号"}')
    ib.add_argument("--dry-run", action="store_true")
    ib.add_argument("--create-houses", action="store_true")
    sub.add_parser(
        "basedata-retention",
        help="reduce residents who moved away longer than WANGGE_BASEDATA_RETENTION_DAYS to figures",
    )
    args = p.parse_args(argv)
    if args.cmd not in ("prestart", "migrate"):
        from app import extensions

        extensions.register()  # error codes and jobs, as `create_app` does

    if args.cmd == "prestart":
        asyncio.run(_prestart(seed=not args.no_seed, timeout=args.timeout))
    elif args.cmd == "migrate":
        from app.config import get_settings
        from app.migrate import upgrade

        upgrade(get_settings().database_url)
    elif args.cmd == "seed-demo":
        asyncio.run(_seed(second_district=args.second_district))
    elif args.cmd == "import-grids":
        raise SystemExit(asyncio.run(_import(args.file, args.repair, args.mode, args.crs)))
    elif args.cmd == "export-grids":
        raise SystemExit(asyncio.run(_export(args.area, args.crs)))
    elif args.cmd == "create-user":
        raise SystemExit(asyncio.run(_create_user(args)))
    elif args.cmd == "load-calendar":
        raise SystemExit(asyncio.run(_load_calendar(args.file)))
    elif args.cmd == "seed-history":
        if not 1 <= args.cases <= 5_000_000:
            p.error("--cases must be in 1..5,000,000")
        raise SystemExit(asyncio.run(_seed_history(args.cases, not args.no_events)))
    elif args.cmd == "stats-compact":
        raise SystemExit(asyncio.run(_stats_compact()))
    elif args.cmd == "stats-rebuild":
        raise SystemExit(asyncio.run(_stats_rebuild()))
    elif args.cmd == "purge":
        raise SystemExit(asyncio.run(_purge()))
    elif args.cmd == "distribute":
        raise SystemExit(asyncio.run(_distribute(spread=not args.no_spread)))
    elif args.cmd == "verify-audit":
        raise SystemExit(asyncio.run(_verify_audit()))
    elif args.cmd == "rotate-keys":
        raise SystemExit(asyncio.run(_rotate_keys(args.rehash)))
    elif args.cmd == "import-basedata":
        raise SystemExit(asyncio.run(_import_basedata(args)))
    elif args.cmd == "basedata-retention":
        raise SystemExit(asyncio.run(_basedata_retention()))
    elif args.cmd == "check-coverage":
        raise SystemExit(check_coverage_file(args.file, args.parents, args.sliver_m2, args.report))


if __name__ == "__main__":
    main()

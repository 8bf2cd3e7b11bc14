"""GeoJSON import (all-or-nothing, every bad feature reported at once) and export of grids."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Request
from geoalchemy2.shape import from_shape, to_shape
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.models import Area
from app.audit.service import record
from app.auth.policy import Principal
from app.config import get_settings
from app.errors import ApiError, FieldError
from app.geometry import CRS, issue_errors
from app.grids.models import Grid, GridBoundary
from app.grids.schemas import GRID_CODE, GridKind
from app.grids.service import below_area, outside_parent_m2, set_boundary
from geo.geojson import to_geojson
from geo.validate import GeoValidationError, parse_polygonal

ImportMode = Literal["create", "upsert"]


class GridProperties(BaseModel):
    """The properties of one grid feature (import and export use the same names)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=GRID_CODE)
    name: str = Field(min_length=1, max_length=100)
    kind: GridKind
    community_code: str = Field(pattern=r"^[0-9]{12}$")
    households: int | None = Field(None, ge=0, le=1_000_000)
    population: int | None = Field(None, ge=0, le=10_000_000)
    notes: str | None = Field(None, max_length=2000)


@dataclass
class _Parsed:
    index: int
    props: GridProperties
    geometry: BaseGeometry
    changes: list[str]
    area_before_m2: float | None
    area_after_m2: float


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: list[dict[str, Any]] = field(default_factory=list)


def _err(index: int, fld: str | None, code: str, zh: str, en: str, **extra: Any) -> FieldError:
    return FieldError(
        field=fld, code=code, message=zh, message_en=en, extra={"index": index, **extra}
    )


def _parse_features(fc: Any, *, crs: CRS, repair: bool) -> tuple[list[_Parsed], list[FieldError]]:
    s = get_settings()
    errors: list[FieldError] = []
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection":
        raise ApiError(
            "validation_error",
            detail="请求体应为 GeoJSON FeatureCollection",
            detail_en="The body must be a GeoJSON FeatureCollection",
            field="type",
        )
    features = fc.get("features")
    if not isinstance(features, list):
        raise ApiError(
            "validation_error",
            field="features",
            detail="features 应为数组",
            detail_en="features must be an array",
        )
    if len(features) > s.max_import_features:
        raise ApiError(
            "validation_error",
            field="features",
            detail=f"一次最多导入 {s.max_import_features} 个网格",
            detail_en=f"At most {s.max_import_features} grids per import",
        )
    parsed: list[_Parsed] = []
    for i, f in enumerate(features):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            errors.append(
                _err(i, None, "wrong_type", "不是 GeoJSON Feature", "not a GeoJSON Feature")
            )
            continue
        props: GridProperties | None = None
        try:
            props = GridProperties.model_validate(f.get("properties") or {})
        except ValidationError as e:
            for pe in e.errors():
                loc = ".".join(str(x) for x in pe["loc"])
                errors.append(
                    _err(
                        i,
                        f"properties.{loc}",
                        str(pe["type"]),
                        f"属性 {loc} 无效：{pe['msg']}",
                        f"property {loc}: {pe['msg']}",
                    )
                )
        try:
            pg = parse_polygonal(
                f.get("geometry"),
                max_vertices=s.max_vertices,
                min_area_m2=s.sliver_m2,
                repair=repair,
                crs=crs,
            )
        except GeoValidationError as e:
            for fe in issue_errors(e.issues, "geometry", {"index": i}):
                errors.append(fe)
            continue
        if props is not None:
            parsed.append(
                _Parsed(i, props, pg.geometry, pg.repairs, pg.area_before_m2, pg.area_after_m2)
            )
    counts = Counter(p.props.code for p in parsed)
    for p in parsed:
        if counts[p.props.code] > 1:
            errors.append(
                _err(
                    p.index,
                    "properties.code",
                    "duplicate_code",
                    f"文件中网格编码重复：{p.props.code}",
                    f"duplicate code in the file: {p.props.code}",
                )
            )
    return parsed, errors


async def import_grids(
    session: AsyncSession,
    fc: Any,
    *,
    crs: CRS = CRS.WGS84,
    repair: bool = False,
    mode: ImportMode = "create",
    scope: set[int] | None = None,
    who: Principal | None = None,
    request: Request | None = None,
) -> ImportReport:
    """Validate every feature, then write all of them in one transaction — or nothing."""
    parsed, errors = _parse_features(fc, crs=crs, repair=repair)

    codes = sorted({p.props.community_code for p in parsed})
    stmt = select(Area).where(Area.code.in_(codes))
    if scope is not None:  # the caller may only write below these areas
        stmt = stmt.where(Area.id.in_(below_area(scope)))
    communities = {a.code: a for a in (await session.execute(stmt)).scalars()}
    existing = {
        g.code: g
        for g in (
            await session.execute(select(Grid).where(Grid.code.in_([p.props.code for p in parsed])))
        ).scalars()
    }
    tolerance = get_settings().parent_tolerance_m2
    parents: dict[str, BaseGeometry | None] = {
        c: (to_shape(a.boundary) if a.boundary is not None else None)
        for c, a in communities.items()
    }
    for p in parsed:
        c = communities.get(p.props.community_code)
        if c is None:
            errors.append(
                _err(
                    p.index,
                    "properties.community_code",
                    "unknown_parent",
                    f"社区编码不存在：{p.props.community_code}",
                    f"unknown community code: {p.props.community_code}",
                )
            )
            continue
        if c.level != "community":
            errors.append(
                _err(
                    p.index,
                    "properties.community_code",
                    "invalid_parent",
                    f"{c.name} 不是社区/村",
                    f"{c.name} is not a community/village",
                )
            )
            continue
        old = existing.get(p.props.code)
        if old is not None and (mode == "create" or old.deleted_at is not None):
            errors.append(
                _err(
                    p.index,
                    "properties.code",
                    "code_exists",
                    f"网格编码已存在：{p.props.code}",
                    f"the grid code is already in use: {p.props.code}",
                )
            )
        out = outside_parent_m2(p.geometry, parents[c.code])
        if out > tolerance:
            loc = p.geometry.difference(parents[c.code]).representative_point()  # type: ignore[arg-type]
            errors.append(
                _err(
                    p.index,
                    "geometry",
                    "outside_parent",
                    f"有 {out:.1f} 平方米超出所属社区 {c.name}",
                    f"{out:.1f} m² lie outside its community {c.name}",
                    outside_m2=round(out, 1),
                    location=[round(loc.x, 7), round(loc.y, 7)],
                )
            )
    if errors:
        errors.sort(key=lambda e: (e.extra or {}).get("index", -1))
        raise ApiError(
            "import_failed",
            detail=f"{len({(e.extra or {}).get('index') for e in errors})} 个要素有问题，未导入任何网格",
            detail_en=f"{len({(e.extra or {}).get('index') for e in errors})} features have problems; "
            "nothing was imported",
            errors=errors,
        )

    report = ImportReport()
    updated_codes: list[str] = []
    new = [p for p in parsed if p.props.code not in existing]
    if new:
        ids = (
            (
                await session.execute(
                    insert(Grid).returning(Grid.id, sort_by_parameter_order=True),
                    [
                        {
                            "code": p.props.code,
                            "name": p.props.name,
                            "kind": p.props.kind,
                            "community_id": communities[p.props.community_code].id,
                            "households": p.props.households,
                            "population": p.props.population,
                            "notes": p.props.notes,
                        }
                        for p in new
                    ],
                )
            )
            .scalars()
            .all()
        )
        now = (await session.execute(select(func.now()))).scalar_one()
        await session.execute(
            insert(GridBoundary),
            [
                {
                    "grid_id": gid,
                    "boundary": from_shape(p.geometry, srid=4326),
                    "valid_from": now,
                    "created_by": who.user_id if who else None,
                }
                for gid, p in zip(ids, new, strict=True)
            ],
        )
        report.created = len(new)
    for p in parsed:
        old = existing.get(p.props.code)
        if old is None:
            continue
        changed = False
        values = p.props.model_dump(exclude={"code", "community_code"})
        values["community_id"] = communities[p.props.community_code].id
        for k, v in values.items():
            if getattr(old, k) != v:
                setattr(old, k, v)
                changed = True
        changed = (
            await set_boundary(session, old.id, p.geometry, who.user_id if who else None) or changed
        )
        if changed:
            old.updated_at = func.now()
            report.updated += 1
            updated_codes.append(p.props.code)
        else:
            report.unchanged += 1
    report.repaired = [
        {
            "index": p.index,
            "code": p.props.code,
            "changes": p.changes,
            "area_before_m2": p.area_before_m2,
            "area_after_m2": p.area_after_m2,
        }
        for p in parsed
        if p.changes
    ]
    await record(
        session,
        "grids_imported",
        actor=who,
        request=request,
        object_type="grid_import",
        detail={
            "mode": mode,
            "crs": crs.value if hasattr(crs, "value") else str(crs),
            "created": [p.props.code for p in new],
            "updated": updated_codes,
            "unchanged": report.unchanged,
            "repaired": [r["code"] for r in report.repaired],
        },
    )
    return report


_EXPORT_COLS = (
    Grid.code,
    Grid.name,
    Grid.kind,
    Area.code.label("community_code"),
    Grid.households,
    Grid.population,
    Grid.notes,
    GridBoundary.boundary,
)


async def export_grids(
    session: AsyncSession,
    *,
    area_id: int | None = None,
    crs: CRS = CRS.WGS84,
    scope: set[int] | None = None,
) -> dict[str, Any]:
    """The live grids as an RFC 7946 FeatureCollection that `import_grids` takes back."""
    stmt = (
        select(*_EXPORT_COLS)
        .join(GridBoundary, (GridBoundary.grid_id == Grid.id) & GridBoundary.valid_to.is_(None))
        .join(Area, Area.id == Grid.community_id)
        .where(Grid.deleted_at.is_(None))
        .order_by(Grid.code)
    )
    if area_id is not None:
        stmt = stmt.where(Grid.community_id.in_(below_area(area_id)))
    if scope is not None:
        stmt = stmt.where(Grid.community_id.in_(below_area(scope)))
    features = []
    for row in await session.execute(stmt):
        features.append(
            {
                "type": "Feature",
                "id": row.code,
                "properties": {
                    "code": row.code,
                    "name": row.name,
                    "kind": row.kind,
                    "community_code": row.community_code,
                    "households": row.households,
                    "population": row.population,
                    "notes": row.notes,
                },
                "geometry": to_geojson(to_shape(row.boundary), precision=7, crs=crs),
            }
        )
    return {"type": "FeatureCollection", "features": features}

"""Photos on case steps: validated and stored by `photos`, recorded here, served to who may see."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import scope
from app.auth.policy import Principal
from app.cases import photos, service
from app.cases.storage import keys, media_store
from app.config import get_settings
from app.errors import ApiError, not_found
from geo.measure import distance_m


def too_many(n: int) -> ApiError:
    return ApiError(
        "too_many_photos",
        detail=f"每个步骤最多 {n} 张照片",
        detail_en=f"At most {n} photos per step",
    )


def evidence_flags(photo: photos.Photo, case: Any, max_m: float, max_hours: float) -> list[str]:
    """Flags that make a photo weaker evidence: taken far from the case, or at another time."""
    flags = []
    if photo.lon is not None and photo.lat is not None:
        if float(distance_m(photo.lon, photo.lat, case.lon, case.lat)) > max_m:
            flags.append("photo_far_from_case")
    else:
        flags.append("photo_without_gps")
    if photo.taken_at is not None:
        if abs((photo.taken_at - case.at).total_seconds()) > max_hours * 3600:
            flags.append("photo_time_mismatch")
    else:
        flags.append("photo_without_time")
    return flags


_CASE = text(
    "SELECT id, ST_X(location) AS lon, ST_Y(location) AS lat, "
    "coalesce(occurred_at, reported_at) AS at, evidence_flags FROM cases "
    "WHERE id = :id AND district_id = :d FOR UPDATE"
)
_STEP = text(
    "SELECT id FROM case_events WHERE case_id = :c AND district_id = :d "
    "AND (CAST(:e AS bigint) IS NULL OR id = :e) ORDER BY id LIMIT 1"
)
_INSERT = text(
    """
    INSERT INTO attachments (case_id, district_id, event_id, sha256, media_type, bytes, width,
                             height, filename, taken_at, taken_lon, taken_lat, flags, uploaded_by)
    VALUES (:case, :d, :event, :sha, :mt, :bytes, :w, :h, :name, :at, :lon, :lat, :flags, :by)
    ON CONFLICT (event_id, sha256, district_id) DO NOTHING
    """
)


async def add_photos(
    session: AsyncSession,
    case_id: int,
    event_id: int | None,
    uploads: list[tuple[str, bytes]],
    who: Principal,
) -> tuple[list[dict[str, Any]], bool]:
    """Add photos to a step (default: the report). Returns the step's photos and whether any
    was new: the same photo sent again to the same step adds nothing."""
    s = get_settings()
    district = await scope.district_of(session, case_id)
    case = (
        (await session.execute(_CASE, {"id": case_id, "d": district})).first()
        if district is not None
        else None
    )
    if case is None:
        raise not_found("事件", "Case", case_id)
    step = (await session.execute(_STEP, {"c": case_id, "d": district, "e": event_id})).scalar()
    if step is None:
        raise ApiError(
            "validation_error",
            field="event_id",
            detail="该事件没有这个步骤",
            detail_en="No such step on this case",
        )
    processed = []
    for name, data in uploads:
        photo = await photos.decode(data)
        photo.flags = evidence_flags(photo, case, s.evidence_max_m, s.evidence_max_hours)
        processed.append((name, photo))
    have = set(
        (
            await session.execute(
                text("SELECT sha256 FROM attachments WHERE event_id = :e AND district_id = :d"),
                {"e": step, "d": district},
            )
        ).scalars()
    )
    new = {p.sha256: (n, p) for n, p in processed if p.sha256 not in have}
    if len(have) + len(new) > s.max_photos_per_step:
        raise too_many(s.max_photos_per_step)
    media = media_store()
    for name, p in new.values():
        # Stored (durably) before the row that names it: a failure here leaves no row.
        await anyio.to_thread.run_sync(photos.store, media, p)
        await session.execute(
            _INSERT,
            {
                "case": case_id,
                "d": district,
                "event": step,
                "sha": p.sha256,
                "mt": p.media_type,
                "bytes": p.size,
                "w": p.width,
                "h": p.height,
                "name": name[:200],
                "at": p.taken_at,
                "lon": p.lon,
                "lat": p.lat,
                "flags": p.flags,
                "by": who.user_id,
            },
        )
    if new:
        flags = sorted(
            {
                *case.evidence_flags,
                *(
                    f
                    for _, p in new.values()
                    for f in p.flags
                    if f in ("photo_far_from_case", "photo_time_mismatch")
                ),
            }
        )
        await session.execute(
            text(
                "UPDATE cases SET evidence_flags = :f, updated_at = now(), change_seq = sync_number() "
                "WHERE id = :id AND district_id = :d"
            ),
            {"f": flags, "id": case_id, "d": district},
        )
    rows = [a for a in await service.attachments(session, case_id) if a["event_id"] == step]
    return rows, bool(new)


async def file_response(session: AsyncSession, attachment_id: int, thumb: bool) -> Response:
    row = (
        await session.execute(
            text("SELECT sha256, media_type FROM attachments WHERE id = :id"), {"id": attachment_id}
        )
    ).first()
    if row is None:
        raise not_found("附件", "Attachment", attachment_id)
    img, th = keys(row.sha256)
    response = await anyio.to_thread.run_sync(
        media_store().response,
        th if thumb else img,
        "image/jpeg" if thumb else row.media_type,
        {
            "Cache-Control": "private, max-age=86400",
            "ETag": f'"{row.sha256}{"t" if thumb else ""}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
    if response is None:
        raise ApiError(
            "attachment_file_missing",
            status=404,
            detail=f"附件 {attachment_id} 的文件缺失",
            detail_en=f"The file of attachment {attachment_id} is missing",
        )
    return response

"""Case intake from phones: grids, flags, idempotency, duplicates, lists, scope, photos."""

from __future__ import annotations

import io
import uuid
from types import SimpleNamespace

import pytest
from PIL import Image
from sqlalchemy import text

from app.cases import intake
from app.grids import lookup_index
from geo.crs import wgs84_to_gcj02
from tests.factories import category_code, insert_case, point_in_grid
from tests.helpers import image, jpeg, problem


def case_body(category: str, lon: float, lat: float, **kw) -> dict:
    return {
        "category": category,
        "title": "楼道漏水",
        "description": "三单元二楼水管漏水",
        "location": {"lon": lon, "lat": lat, "accuracy_m": 8},
        **kw,
    }


async def test_report_finds_the_grid_and_masks_the_resident(anon, as_user, conn) -> None:
    lon, lat = await point_in_grid(conn, "360602001001001")
    cat = await category_code(conn)
    r = await anon.post(
        "/api/v1/cases",
        headers=as_user("worker"),
        json=case_body(
            cat,
            lon,
            lat,
            urgency="urgent",
            address="立新路1号",
            resident={"name": "李阿姨", "phone": "13812345678"},
        ),
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert r.headers["location"] == f"/api/v1/cases/{c['id']}"
    assert c["grid"]["code"] == "360602001001001"
    assert c["community"]["name"] == "立新社区" and c["district"]["code"] == "360602000000"
    assert c["status"] == "reported" and c["status_label"] == "已上报"
    assert c["urgency_label"] == "紧急" and c["unlocated"] is False and c["off_patch_m"] is None
    assert c["reporter"]["name"] == "立新社区网格员"
    assert c["reported_at"].endswith("+08:00")
    # the number starts with the day of the report in Shanghai time (not a fixed year)
    assert c["number"][:8] == c["reported_at"][:10].replace("-", "")
    assert c["duplicates"] == []
    listed = (await anon.get("/api/v1/cases", headers=as_user("community"))).json()
    mine = next(x for x in listed["items"] if x["id"] == c["id"])
    assert mine["resident"]["phone"] == "138****5678"
    detail = await anon.get(f"/api/v1/cases/{c['id']}", headers=as_user("community"))
    assert detail.json()["resident"]["phone"] == "13812345678"
    assert detail.headers["etag"] == '"1"'
    assert [e["action"] for e in detail.json()["timeline"]] == ["reported"]
    audited = (
        await conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'pii_viewed' AND object_type = 'case' "
                "AND object_id = :id"
            ),
            {"id": str(c["id"])},
        )
    ).scalar()
    assert audited == 1


async def test_unlocated_off_patch_and_placing(anon, as_user, conn) -> None:
    cat = await category_code(conn)
    r = await anon.post(
        "/api/v1/cases", headers=as_user("worker"), json=case_body(cat, 117.20, 28.25)
    )  # east of the district
    c = r.json()
    assert r.status_code == 201 and c["unlocated"] is True and c["grid"] is None
    assert c["nearest"]["distance_m"] > 1000 and c["district"]["code"] == "360602000000"
    assert c["off_patch_m"] > 1000
    problem(
        await anon.get(f"/api/v1/cases/{c['id']}", headers=as_user("community")), 404, "not_found"
    )
    assert (
        await anon.get(f"/api/v1/cases/{c['id']}", headers=as_user("centre"))
    ).status_code == 200
    centre_list = (
        await anon.get("/api/v1/cases", params={"unlocated": True}, headers=as_user("centre"))
    ).json()
    assert c["id"] in [x["id"] for x in centre_list["items"]]
    grid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = '360602001001002'"))
    ).scalar()
    problem(
        await anon.post(
            f"/api/v1/cases/{c['id']}/place", json={"grid_id": grid}, headers=as_user("community")
        ),
        403,
        "forbidden",
    )
    placed = await anon.post(
        f"/api/v1/cases/{c['id']}/place", json={"grid_id": grid}, headers=as_user("centre")
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["grid"]["code"] == "360602001001002" and not placed.json()["unlocated"]
    assert (
        await anon.get(f"/api/v1/cases/{c['id']}", headers=as_user("community"))
    ).status_code == 200
    # worker2 reports in worker's grid: accepted and flagged off-patch
    lon, lat = await point_in_grid(conn, "360602001001001")
    r2 = (
        await anon.post("/api/v1/cases", headers=as_user("worker2"), json=case_body(cat, lon, lat))
    ).json()
    assert r2["grid"]["code"] == "360602001001001" and r2["off_patch_m"] > 1000


async def test_report_in_gcj02(anon, as_user, conn) -> None:
    lon, lat = await point_in_grid(conn, "360602001001003")
    glon, glat = wgs84_to_gcj02(lon, lat)
    body = case_body(await category_code(conn), glon, glat)
    body["location"]["crs"] = "gcj02"
    c = (await anon.post("/api/v1/cases", headers=as_user("worker"), json=body)).json()
    assert c["grid"]["code"] == "360602001001003"
    assert abs(c["location"]["lon"] - lon) < 1e-6


async def test_bad_reports(anon, as_user, conn) -> None:
    cat = await category_code(conn)
    h = as_user("worker")
    problem(
        await anon.post("/api/v1/cases", headers=h, json=case_body("NOPE", 117.03, 28.24)),
        422,
        "validation_error",
    )
    body = problem(
        await anon.post("/api/v1/cases", headers=h, json=case_body(cat, 28.24, 117.03)),
        422,
        "invalid_point",
    )
    assert body["errors"][0]["code"] == "swapped_lat_lon"
    problem(
        await anon.post(
            "/api/v1/cases", headers=h, json=case_body(cat, 117.03, 28.24, status="closed")
        ),
        422,
        "validation_error",
    )
    problem(
        await anon.post(
            "/api/v1/cases",
            headers=h,
            json=case_body(cat, 117.03, 28.24, occurred_at="2099-01-01T00:00:00"),
        ),
        422,
        "validation_error",
    )
    problem(
        await anon.post(
            "/api/v1/cases",
            headers=h,
            json=case_body(cat, 117.03, 28.24, resident={"phone": "12345"}),
        ),
        422,
        "validation_error",
    )
    problem(
        await anon.post(
            "/api/v1/cases", headers=as_user("dept"), json=case_body(cat, 117.03, 28.24)
        ),
        403,
        "forbidden",
    )
    problem(
        await anon.post(
            "/api/v1/cases",
            headers={**h, "Idempotency-Key": ""},
            json=case_body(cat, 117.03, 28.24),
        ),
        400,
        "invalid_idempotency_key",
    )


async def test_idempotency_replays_and_refuses(anon, as_user, conn) -> None:
    lon, lat = await point_in_grid(conn, "360602001001002")
    body = case_body(await category_code(conn), lon, lat)
    key = str(uuid.uuid4())
    h = {**as_user("worker"), "Idempotency-Key": key}
    first = await anon.post("/api/v1/cases", headers=h, json=body)
    again = await anon.post("/api/v1/cases", headers=h, json=body)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    n = (
        await conn.execute(
            text("SELECT count(*) FROM cases WHERE id = :id"), {"id": first.json()["id"]}
        )
    ).scalar()
    assert n == 1
    problem(
        await anon.post("/api/v1/cases", headers=h, json={**body, "title": "别的"}),
        422,
        "idempotency_key_reused",
    )
    # Another user may use the same key: keys are per user.
    other = await anon.post(
        "/api/v1/cases", headers={**as_user("leader"), "Idempotency-Key": key}, json=body
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # A request still running holds the key: 409 with Retry-After.
    busy = str(uuid.uuid4())
    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))).scalar()
    import hashlib

    import orjson

    digest = hashlib.sha256(b"POST /api/v1/cases\n" + orjson.dumps(body)).hexdigest()
    await conn.execute(
        text(
            "INSERT INTO idempotency_keys (user_id, key, method_path, request_hash, state, lease_until) "
            "VALUES (:u, :k, 'POST /api/v1/cases', :h, 'processing', now() + interval '20 seconds')"
        ),
        {"u": uid, "k": busy, "h": digest},
    )
    r = await anon.post(
        "/api/v1/cases",
        content=orjson.dumps(body),
        headers={**as_user("worker"), "Idempotency-Key": busy, "content-type": "application/json"},
    )
    problem(r, 409, "idempotency_key_in_use")
    assert 1 <= int(r.headers["retry-after"]) <= 20


async def test_failure_after_insert_leaves_no_half_case(anon, as_user, conn, monkeypatch) -> None:
    """The intake statement commits the key, the case, its first step and its event together. If
    the answer cannot be made afterwards, the case is whole and the key points at it: the retry
    gets that case back (never a second one, never a half one)."""
    from app.cases import service

    lon, lat = await point_in_grid(conn, "360602001001002")
    body = case_body(await category_code(conn), lon, lat, title="崩溃测试")
    key = str(uuid.uuid4())
    h = {**as_user("worker"), "Idempotency-Key": key}

    def crash(*a, **k):  # the response cannot be built: as if the process failed here
        raise RuntimeError("simulated crash after insert")

    monkeypatch.setattr(service, "case_out", crash)
    r = await anon.post("/api/v1/cases", headers=h, json=body)
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    # The case-side rows and the key (a coordinator table on Citus) read apart.
    whole = (
        await conn.execute(
            text(
                "SELECT c.id, (SELECT count(*) FROM case_events e WHERE e.case_id = c.id "
                "AND e.district_id = c.district_id AND e.action = 'reported') AS steps, "
                "(SELECT count(*) FROM events v WHERE v.case_id = c.id "
                "AND v.district_id = c.district_id AND v.type = 'case.reported') AS published "
                "FROM cases c WHERE c.title = '崩溃测试'"
            )
        )
    ).all()
    assert len(whole) == 1
    [(case_id, steps, published)] = whole
    result_id, state = (
        await conn.execute(
            text("SELECT result_id, state FROM idempotency_keys WHERE key = :k"), {"k": key}
        )
    ).one()
    assert (steps, published, result_id, state) == (1, 1, case_id, "processing")
    monkeypatch.undo()
    r = await anon.post("/api/v1/cases", headers=h, json=body)  # the retry gets it back
    assert r.status_code == 201, r.text
    assert r.json()["id"] == case_id and r.json()["title"] == "崩溃测试"
    again = await anon.post("/api/v1/cases", headers=h, json=body)  # and replays it from now on
    assert again.status_code == 201 and again.content == r.content
    n = (await conn.execute(text("SELECT count(*) FROM cases WHERE title = '崩溃测试'"))).scalar()
    assert n == 1


async def test_a_process_that_died_after_insert_is_recovered_once_its_lease_lapses(
    anon, as_user, conn
) -> None:
    """The process died between the intake statement and storing the answer: the key stays
    'processing' (409 with Retry-After) until its lease lapses; then a retry gets the case."""
    import hashlib

    import orjson

    lon, lat = await point_in_grid(conn, "360602001001002")
    body = case_body(await category_code(conn), lon, lat, title="进程中断")
    key = str(uuid.uuid4())
    h = {**as_user("worker"), "Idempotency-Key": key, "content-type": "application/json"}
    raw = orjson.dumps(body)
    first = await anon.post("/api/v1/cases", headers=h, content=raw)
    assert first.status_code == 201
    # As if the answer had never been stored (the process died right after the statement).
    digest = hashlib.sha256(b"POST /api/v1/cases\n" + raw).hexdigest()
    await conn.execute(
        text(
            "UPDATE idempotency_keys SET state = 'processing', response = NULL, status_code = NULL,"
            " lease_until = now() + interval '20 seconds' WHERE key = :k AND request_hash = :h"
        ),
        {"k": key, "h": digest},
    )
    busy = await anon.post("/api/v1/cases", headers=h, content=raw)
    problem(busy, 409, "idempotency_key_in_use")
    assert 1 <= int(busy.headers["retry-after"]) <= 20
    await conn.execute(
        text("UPDATE idempotency_keys SET lease_until = now() - interval '1 s' WHERE key = :k"),
        {"k": key},
    )
    back = await anon.post("/api/v1/cases", headers=h, content=raw)
    assert back.status_code == 201 and back.json()["id"] == first.json()["id"]
    assert back.json()["duplicates"] == []  # suggestions are not recomputed on recovery
    n = (await conn.execute(text("SELECT count(*) FROM cases WHERE title = '进程中断'"))).scalar()
    assert n == 1


@pytest.mark.parametrize("hint", ["index", "none", "stale"])
async def test_duplicates_with_and_without_the_index_district(
    anon, as_user, conn, monkeypatch, hint
) -> None:
    """The duplicate search's district: from the process's lookup index (a bind, so that Citus
    asks one shard), from the statement's own lookup when there is no index, and a stale index
    naming another district finds no suggestions rather than another district's cases."""
    lon, lat = await point_in_grid(conn, "360602001001002")
    cat = await category_code(conn, 3)
    lookup_index.clear()
    if hint == "index":
        assert await lookup_index.refresh(conn, 200_000)
    elif hint == "stale":
        # Another district with a case of the same category at the same point: the one a
        # search by the stale district alone would suggest.
        other = (
            await conn.execute(
                text(
                    "INSERT INTO areas (level, code, name, boundary) VALUES ('district', "
                    "'369996000000', '邻区', ST_Multi(ST_MakeEnvelope(118, 28, 118.1, 28.1, 4326)))"
                    " RETURNING id"
                )
            )
        ).scalar_one()
        await insert_case(
            conn, None, category=cat, title="邻区事件", location=(lon, lat), district_id=other
        )
        monkeypatch.setattr(lookup_index, "answer", lambda x, y: SimpleNamespace(d_id=other))
    try:
        stmt, _ = intake._statement(lon, lat)
        assert stmt is (intake._INTAKE if hint == "none" else intake._INTAKE_HINTED)
        h = as_user("worker")
        first = await anon.post("/api/v1/cases", headers=h, json=case_body(cat, lon, lat))
        second = await anon.post("/api/v1/cases", headers=h, json=case_body(cat, lon + 0.0001, lat))
        assert first.status_code == second.status_code == 201, second.text
        assert second.json()["district"]["code"] == "360602000000"
        ids = [d["id"] for d in second.json()["duplicates"]]
        if hint == "stale":
            assert ids == []
        else:
            assert first.json()["id"] in ids
    finally:
        lookup_index.clear()


async def test_duplicates_suggested_and_merged(anon, as_user, conn) -> None:
    lon, lat = await point_in_grid(conn, "360602001001001")
    cat = await category_code(conn, 1)
    h = as_user("worker")
    first = (await anon.post("/api/v1/cases", headers=h, json=case_body(cat, lon, lat))).json()
    photo = await anon.post(
        f"/api/v1/cases/{first['id']}/attachments",
        headers=h,
        files={"files": ("a.jpg", jpeg(lon, lat), "image/jpeg")},
    )
    assert photo.status_code == 201, photo.text
    second = (
        await anon.post(
            "/api/v1/cases", headers=as_user("leader"), json=case_body(cat, lon + 0.0002, lat)
        )
    ).json()
    [dup] = second["duplicates"]
    assert dup["id"] == first["id"] and 10 < dup["distance_m"] < 30
    far = (await anon.post("/api/v1/cases", headers=h, json=case_body(cat, lon + 0.01, lat))).json()
    assert far["duplicates"] == []
    other_cat = (
        await anon.post(
            "/api/v1/cases", headers=h, json=case_body(await category_code(conn, 2), lon, lat)
        )
    ).json()
    assert other_cat["duplicates"] == []
    # The first report turns out to be the copy: merge it into the second.
    r = await anon.post(
        f"/api/v1/cases/{first['id']}/duplicate",
        headers=h,
        json={"of": second["id"], "note": "同一处漏水"},
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["status"] == "closed" and merged["duplicate_of"] == second["id"]
    assert len(merged["attachments"]) == 1 and merged["reporter"]["name"] == "立新社区网格员"
    assert merged["timeline"][-1]["action"] == "marked_duplicate"
    orig = (await anon.get(f"/api/v1/cases/{second['id']}", headers=h)).json()
    assert orig["timeline"][-1]["action"] == "duplicate_received"
    problem(
        await anon.post(
            f"/api/v1/cases/{first['id']}/duplicate", headers=h, json={"of": second["id"]}
        ),
        409,
        "conflict",
    )
    problem(
        await anon.post(
            f"/api/v1/cases/{second['id']}/duplicate", headers=h, json={"of": second["id"]}
        ),
        422,
        "validation_error",
    )
    # closed duplicates are no longer suggested
    third = (await anon.post("/api/v1/cases", headers=h, json=case_body(cat, lon, lat))).json()
    assert [d["id"] for d in third["duplicates"]] == [second["id"]]


async def test_cases_merge_within_their_district_only(client, conn) -> None:
    """The district is in the cases' keys (migration 0014): a copy names an original of its own
    district; another district's case is refused with the field at fault, not a 500."""
    cat = await category_code(conn, 1)
    lon, lat = await point_in_grid(conn, "360602001001001")
    mine = (await client.post("/api/v1/cases", json=case_body(cat, lon, lat))).json()
    other = (
        await conn.execute(
            text(
                "INSERT INTO areas (level, code, name, boundary) VALUES ('district', "
                "'369997000000', '邻区', ST_Multi(ST_MakeEnvelope(118, 28, 118.1, 28.1, 4326))) "
                "RETURNING id"
            )
        )
    ).scalar_one()
    theirs = await insert_case(
        conn,
        None,
        number="OTHER-1",
        category=cat,
        title="邻区事件",
        location=(118.05, 28.05),
        district_id=other,
    )
    r = await client.post(f"/api/v1/cases/{mine['id']}/duplicate", json={"of": theirs})
    body = problem(r, 422, "validation_error")
    assert body["field"] == "of" and "其他区" in body["detail"]
    state = (await client.get(f"/api/v1/cases/{mine['id']}")).json()
    assert state["status"] == mine["status"] and state["duplicate_of"] is None


async def test_list_filters_paging_and_scope(anon, as_user, conn) -> None:
    cat = await category_code(conn)
    lon, lat = await point_in_grid(conn, "360602001001001")
    ids = []
    for i in range(5):
        c = (
            await anon.post(
                "/api/v1/cases",
                headers=as_user("worker"),
                json=case_body(cat, lon, lat, title=f"分页{i}"),
            )
        ).json()
        ids.append(c["id"])
    seen, cursor = [], None
    while True:
        page = (
            await anon.get(
                "/api/v1/cases",
                headers=as_user("worker"),
                params={"limit": 2, "q": "分页", **({"cursor": cursor} if cursor else {})},
            )
        ).json()
        assert "items" in page, page
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)
    assert (
        await anon.get("/api/v1/cases", headers=as_user("worker2"), params={"q": "分页"})
    ).json()["items"] == []
    problem(await anon.get(f"/api/v1/cases/{ids[0]}", headers=as_user("worker2")), 404, "not_found")
    problem(await anon.get(f"/api/v1/cases/{ids[0]}", headers=as_user("dept")), 404, "not_found")
    by_grid = (
        await anon.get(
            "/api/v1/cases",
            headers=as_user("street"),
            params={
                "grid_id": (
                    await conn.execute(text("SELECT id FROM grids WHERE code = '360602001001001'"))
                ).scalar(),
                "category": cat,
                "status": "reported",
            },
        )
    ).json()
    assert set(ids) <= {x["id"] for x in by_grid["items"]}
    problem(
        await anon.get("/api/v1/cases", headers=as_user("worker"), params={"cursor": "zzz"}),
        422,
        "validation_error",
    )


async def test_photos(anon, as_user, conn, tmp_path, monkeypatch) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "media_dir", str(tmp_path))
    lon, lat = await point_in_grid(conn, "360602001001001")
    h = as_user("worker")
    c = (
        await anon.post(
            "/api/v1/cases",
            headers=h,
            json=case_body(
                await category_code(conn), lon, lat, occurred_at="2026-11-23T10:00:00+08:00"
            ),
        )
    ).json()
    url = f"/api/v1/cases/{c['id']}/attachments"
    good = jpeg(lon, lat, "2026:11:23 10:05:00")
    r = await anon.post(url, headers=h, files={"files": ("IMG_1.jpg", good, "image/jpeg")})
    assert r.status_code == 201, r.text
    [a] = r.json()
    assert a["flags"] == [] and a["taken_at"] == "2026-11-23T10:05:00+08:00"
    # the same photo again: nothing new
    r = await anon.post(url, headers=h, files={"files": ("again.jpg", good, "image/jpeg")})
    assert r.status_code == 200 and len(r.json()) == 1
    served = await anon.get(a["url"], headers=h)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert dict(Image.open(io.BytesIO(served.content)).getexif()) == {}
    thumb = await anon.get(a["thumbnail_url"], headers=h)
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    problem(await anon.get(a["url"], headers=as_user("worker2")), 404, "not_found")
    # other formats
    r = await anon.post(
        url,
        headers=h,
        files=[
            ("files", (f"x.{f}", image(f), "application/octet-stream"))
            for f in ("PNG", "WEBP", "HEIF")
        ],
    )
    assert r.status_code == 201 and len(r.json()) == 4
    # far away and a day off: flagged on the photo and on the case
    r = await anon.post(
        url,
        headers=h,
        files={
            "files": (
                "far.jpg",
                jpeg(lon + 0.02, lat, "2026:11:20 10:00:00", colour=(1, 2, 3)),
                "image/jpeg",
            )
        },
    )
    far = next(x for x in r.json() if x["flags"] and "photo_far_from_case" in x["flags"])
    assert "photo_time_mismatch" in far["flags"]
    case = (await anon.get(f"/api/v1/cases/{c['id']}", headers=h)).json()
    assert {"photo_far_from_case", "photo_time_mismatch"} <= set(case["evidence_flags"])
    # malicious and broken files
    php = b"<?php system($_GET['c']); ?>"
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, "PNG")
    for name, data in (
        ("shell.jpg", php),
        ("empty.jpg", b""),
        ("cut.jpg", good[: len(good) // 2]),
        ("bomb.png", bomb.getvalue()),
    ):
        body = problem(
            await anon.post(url, headers=h, files={"files": (name, data, "image/jpeg")}),
            415,
            "unsupported_image",
        )
        assert body["field"] == "file"
    too_big = good + b"\0" * (get_settings().max_upload_bytes)
    problem(
        await anon.post(url, headers=h, files={"files": ("big.jpg", too_big, "image/jpeg")}),
        413,
        "payload_too_large",
    )
    many = [("files", (f"{i}.jpg", jpeg(colour=(i, i, i)), "image/jpeg")) for i in range(5)]
    problem(await anon.post(url, headers=h, files=many), 409, "too_many_photos")
    assert len((await anon.get(f"/api/v1/cases/{c['id']}", headers=h)).json()["attachments"]) == 5
    files = list(tmp_path.rglob("*.img"))
    assert len(files) == 5 and all(".." not in str(p) for p in files)


async def test_expired_idempotency_keys_are_purged(conn) -> None:
    from app.idempotency import purge

    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))).scalar()
    await conn.execute(
        text(
            "INSERT INTO idempotency_keys (user_id, key, method_path, request_hash, state, lease_until,"
            " created_at) VALUES (:u, 'old', 'POST /x', 'h', 'done', now(), now() - interval '73 hours'),"
            " (:u, 'new', 'POST /x', 'h', 'done', now(), now() - interval '71 hours')"
        ),
        {"u": uid},
    )
    assert await purge(conn) == 1
    left = (
        (
            await conn.execute(
                text(
                    "SELECT key FROM idempotency_keys WHERE user_id = :u AND key IN ('old', 'new')"
                ),
                {"u": uid},
            )
        )
        .scalars()
        .all()
    )
    assert left == ["new"]


async def test_a_report_is_an_event_for_the_consoles(anon, as_user, conn) -> None:
    lon, lat = await point_in_grid(conn, "360602001001001")
    c = (
        await anon.post(
            "/api/v1/cases",
            headers=as_user("worker"),
            json=case_body(await category_code(conn), lon, lat),
        )
    ).json()
    row = (
        await conn.execute(
            text("SELECT type, area_ids, payload->>'number' FROM events WHERE case_id = :id"),
            {"id": c["id"]},
        )
    ).one()
    assert row[0] == "case.reported" and row[2] == c["number"]
    assert set(row[1]) == {c["community"]["id"], c["street"]["id"], c["district"]["id"]}


async def test_a_case_placed_in_another_districts_grid_takes_its_figures_along(
    client, conn
) -> None:
    """The admin places a case into a grid of another district: the case's rows move (migration
    0024), and its evaluation facts, already written for the old district, are rewritten in the
    same transaction, so the facts' key to the case holds at commit (checked here at once). On
    Citus the move is refused (409 `cross_district_move`)."""
    from app.db import is_citus
    from tests.api.test_matrix import WORLD

    cat = await category_code(conn, 1)
    lon, lat = await point_in_grid(conn, "360602001001001")
    c = (await client.post("/api/v1/cases", json=case_body(cat, lon, lat))).json()
    await conn.execute(text("SELECT stats_catch_up(NULL)"))  # its facts exist
    world = (await conn.execute(text(WORLD))).one()
    r = await client.post(f"/api/v1/cases/{c['id']}/place", json={"grid_id": world.grid})
    if await is_citus(conn):
        # Citus keeps a row in its district's shard group: a clear refusal, nothing moved.
        body = problem(r, 409, "cross_district_move")
        assert body["field"] == "grid_id" and "其他区" in body["detail"]
        return
    assert r.status_code == 200, r.text
    await conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # what the commit checks
    row = (
        await conn.execute(
            text(
                "SELECT c.district_id, f.district_id AS facts FROM cases c "
                "LEFT JOIN stats_case_facts f ON f.id = c.id WHERE c.id = :c"
            ),
            {"c": c["id"]},
        )
    ).one()
    assert row.district_id == row.facts != c["district"]["id"]

"""What the fuzzer found, pinned as plain tests (each failed before its fix)."""

from __future__ import annotations

from tests.helpers import problem


async def test_export_in_scope_with_an_area(anon, as_user, demo) -> None:
    """Two recursive 'below' CTEs (the area asked for and the caller's scope) in one query."""
    r = await anon.get(
        "/api/v1/grids/export",
        params={"area_id": demo["360602001000"]},
        headers=as_user("centre"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"]


async def test_numbers_beyond_bigint_are_422(anon, as_user) -> None:
    h = as_user("admin")
    huge = 100362390540460559958016
    problem(
        await anon.get("/api/v1/users", params={"offset": huge}, headers=h), 422, "validation_error"
    )
    problem(await anon.get(f"/api/v1/cases/{huge}", headers=h), 422, "validation_error")
    r = await anon.get("/api/v1/events/stream", headers={**h, "Last-Event-ID": str(huge)})
    problem(r, 422, "validation_error")


async def test_a_post_ending_before_it_starts_is_422(anon, as_user, conn) -> None:
    from sqlalchemy import text

    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))).scalar()
    r = await anon.post(
        f"/api/v1/users/{uid}/posts",
        json={"ends_on": "2000-01-01", "role": "admin"},
        headers=as_user("admin"),
    )
    problem(r, 422, "validation_error")


async def test_a_boolean_is_not_a_coordinate(anon, as_user, demo) -> None:
    """`"lat": false` was read as 0 and a grid's need was stored at latitude 0 (ST201)."""
    from tests.factories import DEMO_GRID

    body = {
        "category": "legal",
        "title": "求助",
        "households": 1,
        "source": "grid_visit",
        "location": {"lat": False, "lon": 117.0},
    }
    r = await anon.post(
        f"/api/v1/grids/{demo[DEMO_GRID]}/needs", json=body, headers=as_user("worker")
    )
    assert problem(r, 422, "validation_error")["field"] == "location.lat"
    body["location"] = None
    body["households"] = False  # and a count is no boolean either
    r = await anon.post(
        f"/api/v1/grids/{demo[DEMO_GRID]}/needs", json=body, headers=as_user("worker")
    )
    assert problem(r, 422, "validation_error")["field"] == "households"


async def test_filters_refuse_values_they_cannot_mean(anon, as_user) -> None:
    """`make fuzz` (all checks): an unknown status or a category that is not a code answered 200
    with nothing in it; a filter that cannot match is a 422 naming it."""
    h = as_user("centre")
    for path in ("/api/v1/cases", "/tiles/cases/14/13500/6800.mvt"):
        bad = await anon.get(path, params={"status": "nonsense"}, headers=h)
        assert "status" in problem(bad, 422, "validation_error")["errors"][0]["field"]
        bad = await anon.get(path, params={"category": "false"}, headers=h)
        assert "category" in problem(bad, 422, "validation_error")["errors"][0]["field"]
        ok = await anon.get(path, params={"status": ["closed", "handling"]}, headers=h)
        assert ok.status_code in (200, 204), ok.text
    r = await anon.get(
        "/api/v1/stats/export", params={"table": "indicators", "category": "false"}, headers=h
    )
    problem(r, 422, "validation_error")
    assert (
        await anon.get("/api/v1/cases", params={"category": "SR-01"}, headers=h)
    ).status_code == 200


async def test_open311_refuses_a_control_character_in_its_own_format(anon) -> None:
    """A NUL in `jurisdiction_id` reached the database (22021) and came back as a 422
    problem+json: the Open311 door answers 400 in its own format."""
    for path in ("/open311/v2/services.json", "/open311/v2/services/SR-01.json"):
        r = await anon.get(path, params={"jurisdiction_id": "M\x00\x05"})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/json")
        [err] = r.json()
        assert err["code"] == 400 and "jurisdiction_id" in err["description"]


async def test_an_id_beyond_bigint_never_reaches_the_scope_query(anon, as_user) -> None:
    """The policy's object check ran `int()` of the raw path value into the database (an
    int64 overflow the database refused); out of range it now leaves it to the 422."""
    huge = 5056036462182466121371188092469248
    for path in (f"/api/v1/buildings/{huge}", f"/api/v1/cases/{huge}"):
        problem(await anon.get(path, headers=as_user("worker")), 422, "validation_error")


async def test_a_buildings_houses_list(anon, as_user, conn) -> None:
    """make fuzz (2026-12-02): listing a building's houses answered 500 (the grid id was bound
    untyped, PostgreSQL took it for text and the driver refused the integer)."""
    from tests.api.basedata_support import building_id, grid_id, household

    h = as_user("admin")
    b = await building_id(conn)
    await household(anon, h, b, room="909")
    r = await anon.get(f"/api/v1/buildings/{b}/houses", headers=h)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    grid = await grid_id(conn)
    assert items and all(i["grid_id"] == grid for i in items), items[:1]


async def test_open311_request_ids_are_hex(anon) -> None:
    """make fuzz (2026-12-02): 20,000 non-ASCII characters as service_request_id made a 120 KB
    URL that uvicorn refused with its own text/plain 400; the ids are hex, so the parameter says
    so (and the longest allowed list is an ASCII URL of about 20 KB)."""
    for path in ("/open311/v2/requests.json", "/open311/v2/servicerequestupdates.json"):
        r = await anon.get(path, params={"service_request_id": "À" * 50})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/json")
        r = await anon.get(path, params={"service_request_id": "ab" * 5000})
        assert r.status_code in (400, 404), r.text


async def test_the_qr_form_answers_an_unreadable_body_with_its_page(anon) -> None:
    """A multipart body that cannot be parsed came back as problem+json, which the QR form (a
    page in a resident's browser) does not document: it is the form's HTML error page, 400."""
    boundary = "3aeba96ab975e2074543a0ea842ced59"
    r = await anon.post(
        "/open311/qr/360602001001001",
        content=f"--{boundary}\r\n\xff--{boundary}--\r\n".encode("latin-1"),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "上报未成功" in r.text
    assert r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"


async def test_the_documented_max_length_counts_what_was_sent(anon, as_user) -> None:
    """An 81-character name with a leading tab was stripped to 80 and accepted (ST201): the
    limit holds for the text as sent, and the stripping comes after it."""
    h = as_user("worker")
    sent = "\tt0\\\u00a1" + "*" * 76
    assert len(sent) == 81 and len(sent.strip()) == 80
    r = await anon.post("/api/v1/me/api-tokens", json={"name": sent}, headers=h)
    assert problem(r, 422, "validation_error")["field"] == "name"
    r = await anon.post("/api/v1/me/api-tokens", json={"name": sent[1:]}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == sent.strip()


async def test_the_ticket_cookie_is_checked_as_sent(anon, as_user) -> None:
    """A `wangge_sse` cookie over its documented length came with a valid bearer token and was
    accepted (ST201): the parser keeps the last of two cookies of one name, so a long one
    followed by a short one passed the length check. Two, or one too long, are refused."""
    h = as_user("worker")
    long = "x" * 2049
    for cookie in (f"wangge_sse={long}; wangge_sse=short", f"wangge_sse=a; wangge_sse={long}"):
        r = await anon.get("/api/v1/events/stream", headers={**h, "Cookie": cookie})
        assert problem(r, 422, "validation_error")["field"] == "wangge_sse"
    quoted = '"' + "\\101" * 700 + '"'  # 2,802 characters sent, 700 once unquoted
    # a value cut at a `;` (the parser keeps `a`), a space or a quote inside, a nameless pair
    for value in (quoted, "a;" + long, "a;b" + "x" * 10, "a b", '"a"', "a; " + long):
        r = await anon.get("/api/v1/events/stream", headers={**h, "Cookie": f"wangge_sse={value}"})
        assert problem(r, 422, "validation_error")["field"] == "wangge_sse", value


async def test_an_unknown_channel_is_refused(anon, as_user) -> None:
    """`?channel=true` listed no case instead of naming the fault (ST201): the channels are an
    enumeration."""
    h = as_user("admin")
    r = await anon.get("/api/v1/cases", params={"channel": "true"}, headers=h)
    assert problem(r, 422, "validation_error")["field"] == "channel.0"
    r = await anon.get("/api/v1/cases", params=[("channel", "app"), ("channel", "qr")], headers=h)
    assert r.status_code == 200, r.text

"""Open311 GeoReport v2: every answer against the published JSON Schemas and the spec's XML
structure, every error path, and the whole path a hotline integrator takes."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from app.open311.public_ids import decode
from tests.api.open311_support import (
    cgj_category,
    check_error,
    check_json,
    check_request_xml,
    new_key,
    point_in,
    xml_of,
)

GRID = "360602001001001"  # 立新社区 grid 1 (江边街道, 月湖区)
V2 = "/open311/v2"


async def test_discovery_and_services_json_and_xml(anon, conn) -> None:
    r = await anon.get(f"{V2}/discovery.json")
    assert r.status_code == 200
    d = r.json()
    [ep] = d["endpoints"]
    assert ep["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert ep["url"] == "http://test/open311/v2" and set(ep["formats"]) == {
        "application/json",
        "text/xml",
    }
    x = xml_of(await anon.get(f"{V2}/discovery.xml"), "discovery")
    assert [f.text for f in x.find("endpoints/endpoint/formats")] == [
        "application/json",
        "text/xml",
    ]

    services = check_json(await anon.get(f"{V2}/services.json"), "services.json")
    active = (await conn.execute(text("SELECT count(*) FROM categories WHERE active"))).scalar_one()
    assert len(services) == active > 0
    first = services[0]
    row = (
        await conn.execute(
            text(
                "SELECT c.name, k.name AS grp FROM categories c JOIN category_classes k "
                "ON k.code = c.class_code WHERE c.code = :c"
            ),
            {"c": first["service_code"]},
        )
    ).one()
    assert (first["service_name"], first["group"], first["type"], first["metadata"]) == (
        row.name,
        row.grp,
        "realtime",
        True,
    )
    en = (await anon.get(f"{V2}/services.json", headers={"Accept-Language": "en"})).json()
    assert en[0]["service_name"] != first["service_name"]

    x = xml_of(await anon.get(f"{V2}/services.xml"), "services")
    assert len(x) == active and all(s.tag == "service" for s in x)
    assert [c.tag for c in x[0]] == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]
    assert x[0].find("metadata").text == "true"

    # definitions: an event category (3 attributes) and a component (4: the facility's code)
    kinds = {
        r.kind: r.code
        for r in await conn.execute(
            text(
                "SELECT DISTINCT ON (k.kind) k.kind, c.code FROM categories c "
                "JOIN category_classes k ON k.code = c.class_code WHERE c.active "
                "ORDER BY k.kind, c.code"
            )
        )
    }
    ev = check_json(
        await anon.get(f"{V2}/services/{kinds['event']}.json"), "service-definition.json"
    )
    assert [a["code"] for a in ev["attributes"]] == ["title", "urgency", "occurred_at"]
    urgency = ev["attributes"][1]
    assert urgency["datatype"] == "singlevaluelist"
    assert [v["key"] for v in urgency["values"]] == ["normal", "urgent", "critical"]
    comp = check_json(
        await anon.get(f"{V2}/services/{kinds['component']}.json"), "service-definition.json"
    )
    assert comp["attributes"][-1]["code"] == "facility_code"
    x = xml_of(await anon.get(f"{V2}/services/{kinds['event']}.xml"), "service_definition")
    assert x.find("service_code").text == kinds["event"]
    attrs = x.find("attributes")
    assert [a.tag for a in attrs] == ["attribute"] * 3
    assert [v.find("key").text for v in attrs[1].find("values")] == ["normal", "urgent", "critical"]
    assert attrs[0].find("required").text == "false"


async def test_read_errors(anon) -> None:
    check_error(await anon.get(f"{V2}/services/NO-SUCH.json"), 404)
    check_error(await anon.get(f"{V2}/services/NO-SUCH.xml"), 404)
    check_error(await anon.get(f"{V2}/services.yaml"), 400)
    check_error(await anon.get(f"{V2}/no/such/thing.json"), 404)
    check_error(await anon.get(f"{V2}/nothing.xml"), 404)
    check_error(await anon.get(f"{V2}/requests/999999999.json"), 404)
    check_error(await anon.get(f"{V2}/requests/abc.xml"), 404)
    check_error(await anon.get(f"{V2}/tokens/{uuid.uuid4()}.json"), 404)
    check_error(await anon.get(f"{V2}/tokens/not-a-token.xml"), 404)
    check_error(await anon.get(f"{V2}/services.json", params={"jurisdiction_id": "999"}), 404)
    check_error(await anon.get(f"{V2}/requests.json", params={"status": "pending"}), 400)
    check_error(await anon.get(f"{V2}/requests.json", params={"start_date": "yesterday"}), 400)
    check_error(await anon.get(f"{V2}/requests.json", params={"start_date": "9999-12-31"}), 400)
    check_error(await anon.get(f"{V2}/requests.json", params={"end_date": "0001-01-01"}), 400)
    check_error(
        await anon.get(
            f"{V2}/requests.json",
            params={"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01"},
        ),
        400,
    )  # more than 90 days
    check_error(
        await anon.get(
            f"{V2}/requests.json", params={"start_date": "2026-06-01", "end_date": "2026-05-01"}
        ),
        400,
    )
    check_error(await anon.get(f"{V2}/requests.json", params={"service_request_id": "1,x"}), 400)
    check_error(await anon.get(f"{V2}/requests.xml", params={"page": 0}), 400)
    check_error(
        await anon.get(f"{V2}/servicerequestupdates.json", params={"updated_after": "?"}), 400
    )


def form(category: str, lon: float, lat: float, api_key: str, **kw: str) -> dict[str, str]:
    return {
        "api_key": api_key,
        "service_code": category,
        "lat": str(lat),
        "long": str(lon),
        "description": "市民来电：人行道井盖缺失，夜间有人险些踩空",
        **kw,
    }


async def test_post_errors(anon, as_user, conn, demo) -> None:
    lon, lat = await point_in(conn, GRID)
    cat = await cgj_category(conn)
    key = await new_key(anon, as_user)
    url = f"{V2}/requests.json"
    # the key: missing, wrong, in the query, revoked
    body = form(cat, lon, lat, key["key"])
    del body["api_key"]
    assert "api_key" in check_error(await anon.post(url, data=body), 403)
    check_error(await anon.post(url, data=form(cat, lon, lat, "o311_wrong")), 403)
    check_error(await anon.post(f"{V2}/requests.xml", data=form(cat, lon, lat, "")), 403)
    # a bearer token is not a key
    check_error(await anon.post(url, data=body, headers=as_user("admin")), 403)
    # bad requests
    for bad, status in (
        ({"service_code": "NO-SUCH"}, 400),
        ({"lat": "", "long": ""}, 400),
        ({"long": ""}, 400),
        ({"lat": "north"}, 400),
        ({"lat": "95"}, 400),
        ({"phone": "12345"}, 400),
        ({"email": "not-an-address"}, 400),
        ({"media_url": "javascript:alert(1)"}, 400),
        ({"attribute[colour]": "red"}, 400),
        ({"attribute[urgency]": "yesterday"}, 400),
        ({"attribute[occurred_at]": "2099-01-01T00:00:00+08:00"}, 400),
        ({"description": "长" * 4001}, 400),
        ({"jurisdiction_id": "999999"}, 404),
        ({"lat": "", "long": "", "address_string": "没有这个地址"}, 400),
        ({"lat": "", "long": "", "address_id": "99999999999999999999"}, 400),
        ({"lat": "", "long": "", "address_id": "12a"}, 400),
        ({"lat": "nan"}, 400),
    ):
        check_error(await anon.post(url, data={**form(cat, lon, lat, key["key"]), **bad}), status)
    desc = check_error(
        await anon.post(f"{V2}/requests.xml", data={**form(cat, lon, lat, key["key"]), "lat": ""}),
        400,
    )
    assert "lat" in desc
    # another district's code as jurisdiction_id: the point is not there
    other = (
        await conn.execute(
            text(
                "INSERT INTO areas (level, code, name, parent_id) SELECT 'district', "
                "'360622000000', '余江区', parent_id FROM areas WHERE code = '360602000000' "
                "RETURNING code"
            )
        )
    ).scalar_one()
    check_error(
        await anon.post(url, data=form(cat, lon, lat, key["key"], jurisdiction_id=other)), 400
    )
    # a key scoped to another street may not report here
    scoped = await new_key(anon, as_user, area_ids=[demo["360602002000"]])
    assert "api_key" in check_error(
        await anon.post(url, data=form(cat, lon, lat, scoped["key"])), 403
    )
    # nothing of all this made a case
    n = (
        await conn.execute(text("SELECT count(*) FROM cases WHERE channel = 'hotline'"))
    ).scalar_one()
    assert n == 0
    # a revoked key stops at once
    r = await anon.delete(f"/api/v1/open311/keys/{key['id']}", headers=as_user("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    check_error(await anon.post(url, data=form(cat, lon, lat, key["key"])), 403)


async def test_hotline_integrator_whole_path(anon, as_user, conn, demo) -> None:
    """POST a request, read it back (JSON, XML, token), watch status and notes change as the
    case goes round the loop, and read the update feed."""
    from tests.factories import Loop

    lon, lat = await point_in(conn, GRID)
    cat = await cgj_category(conn)
    key = await new_key(anon, as_user, area_ids=[demo["360602001000"]])  # 江边街道
    r = await anon.post(
        f"{V2}/requests.json",
        data=form(
            cat,
            lon,
            lat,
            key["key"],
            first_name="阿姨",
            last_name="王",
            phone="13912345678",
            email="wang@example.com",
            media_url="https://img.example.com/12345/778.jpg",
            address_string="立新路 18 号",
            **{"attribute[urgency]": "urgent", "attribute[title]": "井盖缺失"},
        ),
    )
    [created] = check_json(r, "#RequestResponse")
    sid, token = created["service_request_id"], created["token"]
    assert decode(sid) is not None and len(sid) == 32  # opaque (issue 17)
    assert created["service_notice"].startswith("已受理，事件编号 ")

    # the case is a normal case, with its channel, reporter and masked resident
    case = (await anon.get(f"/api/v1/cases/{decode(sid)}", headers=as_user("admin"))).json()
    assert case["channel"] == "hotline" and case["urgency"] == "urgent"
    assert case["title"] == "井盖缺失" and case["grid"]["code"] == GRID
    assert case["reporter"]["name"] == "12345 市民热线"
    assert case["resident"] == {"name": "王阿姨", "phone": "13912345678"}  # admin: revealed
    listed = (
        await anon.get("/api/v1/cases", headers=as_user("admin"), params={"channel": "hotline"})
    ).json()
    assert [c["id"] for c in listed["items"]] == [decode(sid)]
    assert listed["items"][0]["resident"]["phone"] == "139****5678"
    apps = (
        await anon.get("/api/v1/cases", headers=as_user("admin"), params={"channel": "app"})
    ).json()
    assert decode(sid) not in [c["id"] for c in apps["items"]]

    async def read() -> dict:
        [one] = check_json(await anon.get(f"{V2}/requests/{sid}.json"), "requests.json")
        text_ = (await anon.get(f"{V2}/requests/{sid}.xml")).text
        for secret in ("13912345678", "5678", "王阿姨", "wang@example.com", "12345 市民热线"):
            assert secret not in str(one) and secret not in text_
        return one

    one = await read()
    assert one["status"] == "open" and one["status_notes"] == "已受理，等待核实立案"
    assert one["service_code"] == cat and one["agency_responsible"] is None
    assert one["media_url"] == "https://img.example.com/12345/778.jpg"
    # generalised to the open311_snap_m (50 m) grid: near, never the doorstep itself
    assert one["address"] == "立新路 18 号" and abs(one["lat"] - lat) < 0.0005
    assert one["expected_datetime"] is None
    assert one["requested_datetime"].endswith("+08:00")
    x = xml_of(await anon.get(f"{V2}/requests/{sid}.xml"), "service_requests")
    [el] = list(x)
    fields = check_request_xml(el)
    assert fields["status"] == "open" and fields["service_request_id"] == sid
    tok = check_json(await anon.get(f"{V2}/tokens/{token}.json"), "#TokenResponse")
    assert tok == [{"service_request_id": sid, "token": token}]
    tx = xml_of(await anon.get(f"{V2}/tokens/{token}.xml"), "service_requests")
    assert [c.tag for c in tx[0]] == ["service_request_id", "token"]

    # staff see what the Open311 request brought: the link, the answers, the e-mail (audited)
    detail = (
        await anon.get(f"/api/v1/open311/requests/{decode(sid)}", headers=as_user("admin"))
    ).json()
    assert detail["integrator"]["name"] == "12345 市民热线" and detail["token"] == token
    assert detail["media_url"] == "https://img.example.com/12345/778.jpg"
    assert detail["attributes"] == {"urgency": "urgent", "title": "井盖缺失"}
    assert detail["email"] == "wang@example.com" and detail["channel"] == "hotline"
    viewed = (
        await conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'pii_viewed' AND object_id = :id "
                "AND detail->'fields' ? 'open311_email'"
            ),
            {"id": str(decode(sid))},
        )
    ).scalar_one()
    assert viewed == 1

    loop = Loop(anon, as_user, {"id": decode(sid)})
    await loop.do("community", "register")
    assert (await read())["status_notes"] == "已立案，等待派遣"
    await loop.do("street", "dispatch")
    masked = (
        await anon.get(f"/api/v1/open311/requests/{decode(sid)}", headers=as_user("dept"))
    ).json()
    assert masked["email"] == "w***@example.com"  # departments do not call residents
    one = await read()
    assert one["agency_responsible"] == "区城市管理局"
    assert one["status_notes"] == "已派遣至区城市管理局，等待签收"
    c = await loop.do("dept", "sign_in")
    one = await read()
    assert one["status"] == "open" and one["status_notes"] == "区城市管理局正在处置"
    due = c["assignments"][0]["handle_due"]
    assert one["expected_datetime"] == due
    await loop.do("dept", "feedback", {"note": "已更换井盖"})
    assert (await read())["status_notes"] == "已处置，等待网格员现场核查"
    await loop.do("worker", "verify", {"passed": True, "note": "现场已恢复"})
    await loop.do("worker", "evaluate", {"satisfaction": "satisfied"})
    one = await read()
    assert one["status"] == "closed" and one["status_notes"] == "已办结"
    closed_at = (await loop.get())["closed_at"]
    assert one["updated_datetime"] == closed_at
    en = (await anon.get(f"{V2}/requests/{sid}.json", headers={"Accept-Language": "en"})).json()
    assert en[0]["status_notes"] == "Closed"

    # the update feed: one update per step, oldest first
    feed = (
        await anon.get(f"{V2}/servicerequestupdates.json", params={"service_request_id": sid})
    ).json()
    assert [u["extended_attributes"]["action"] for u in feed] == [
        "reported",
        "register",
        "dispatch",
        "sign_in",
        "feedback",
        "verify",
        "evaluate",
    ]
    assert [u["status"] for u in feed] == ["open"] * 6 + ["closed"]
    assert feed[2]["description"] == "派遣：已派遣"
    assert all(u["service_request_id"] == sid for u in feed)
    ids = [decode(u["update_id"], "update") for u in feed]  # opaque: decoded to compare
    assert ids == sorted(ids)
    # polling with updated_after the last one seen gives nothing new
    after = (
        await anon.get(
            f"{V2}/servicerequestupdates.json",
            params={"service_request_id": sid, "updated_after": feed[-1]["updated_datetime"]},
        )
    ).json()
    assert after == []
    fx = xml_of(
        await anon.get(f"{V2}/servicerequestupdates.xml", params={"service_request_id": sid}),
        "service_request_updates",
    )
    assert [u.tag for u in fx] == ["request_update"] * 7
    assert [c.tag for c in fx[-1]] == [
        "update_id",
        "service_request_id",
        "status",
        "updated_datetime",
        "description",
        "media_url",
        "extended_attributes",
    ]
    assert fx[-1].find("status").text == "closed"
    # the key was used: its last use is recorded
    keys = (await anon.get("/api/v1/open311/keys", headers=as_user("admin"))).json()
    mine = next(k for k in keys if k["id"] == key["id"])
    assert mine["last_used_at"] is not None and "key" not in mine


async def test_idempotent_post_and_duplicates(anon, as_user, conn) -> None:
    lon, lat = await point_in(conn, GRID)
    cat = await cgj_category(conn)
    key = await new_key(anon, as_user)
    idem = {"Idempotency-Key": str(uuid.uuid4())}
    body = form(cat, lon, lat, key["key"])
    first = await anon.post(f"{V2}/requests.xml", data=body, headers=idem)
    x = xml_of(first, "service_requests")
    sid = x.find("request/service_request_id").text
    assert x.find("request/token").text
    again = await anon.post(f"{V2}/requests.xml", data=body, headers=idem)
    assert again.status_code == 200 and again.content == first.content
    n = (
        await conn.execute(text("SELECT count(*) FROM cases WHERE channel = 'hotline'"))
    ).scalar_one()
    assert n == 1
    check_error(
        await anon.post(
            f"{V2}/requests.xml", data={**body, "description": "另一件事"}, headers=idem
        ),
        400,
    )
    # a second report at the same place is a new case, with the first as a duplicate suggestion
    r = await anon.post(f"{V2}/requests.json", data=body)
    [out] = r.json()
    assert out["service_request_id"] != sid
    dups = out["extended_attributes"]["duplicates"]
    assert [d["service_request_id"] for d in dups] == [sid] and dups[0]["distance_m"] == 0
    assert "附近已有 1 件同类事件在办" in out["service_notice"]


async def test_list_filters_window_paging_and_privacy(anon, as_user, conn) -> None:
    lon, lat = await point_in(conn, GRID)
    cat = await cgj_category(conn)
    private = (
        await conn.execute(
            text(
                "SELECT code FROM categories WHERE class_code = 'MD' AND active ORDER BY code LIMIT 1"
            )
        )
    ).scalar_one()
    key = await new_key(anon, as_user)
    ids = []
    for code in (cat, cat, private):
        r = await anon.post(
            f"{V2}/requests.json",
            data=form(code, lon, lat, key["key"], phone="13700001111", address_string="邻里纠纷楼"),
        )
        ids.append(r.json()[0]["service_request_id"])
    # one rejected (closed), one 100 days old (outside the default window)
    from tests.factories import Loop

    await Loop(anon, as_user, {"id": decode(ids[1])}).do(
        "community", "reject", {"reason": "重复来电"}
    )
    await conn.execute(
        text("UPDATE cases SET reported_at = now() - interval '100 days' WHERE id = :id"),
        {"id": decode(ids[0])},
    )

    async def listed(**params) -> list[str]:
        body = check_json(await anon.get(f"{V2}/requests.json", params=params), "requests.json")
        return [r["service_request_id"] for r in body if r["service_request_id"] in ids]

    assert await listed() == [ids[2], ids[1]]  # newest first; the old one is outside 90 days
    assert await listed(service_request_id=",".join(ids)) == [ids[2], ids[1], ids[0]]
    assert await listed(status="closed") == [ids[1]]
    assert await listed(status="open") == [ids[2]]
    # the public cannot learn a private case's category by filtering on it (app.auth.scope)
    assert await listed(service_code=private) == []
    old = await listed(
        start_date=(
            await conn.execute(
                text("SELECT to_char(now() - interval '120 days', 'YYYY-MM-DD\"T\"HH24:MI:SS')")
            )
        ).scalar_one()
    )
    assert old == [ids[0]]
    assert await listed(updated_after="2000-01-01T00:00:00+08:00") == [ids[2], ids[1], ids[0]]
    page1 = await listed(service_request_id=",".join(ids), page_size=2)
    page2 = await listed(service_request_id=",".join(ids), page_size=2, page=2)
    assert page1 == [ids[2], ids[1]] and page2 == [ids[0]]
    body = (
        await anon.get(f"{V2}/requests.json", params={"service_request_id": ",".join(ids)})
    ).json()
    by_id = {r["service_request_id"]: r for r in body}
    assert by_id[ids[1]]["status_notes"] == "经核实不予立案"
    # a private class (disputes): no description, address or place in public
    hidden = by_id[ids[2]]
    assert hidden["description"] is None and hidden["address"] is None and hidden["lat"] is None
    assert by_id[ids[1]]["description"] and by_id[ids[1]]["address"] == "邻里纠纷楼"
    assert "13700001111" not in str(body) and "1111" not in str(body)
    # numbers typed into the free text are masked in public
    r = await anon.post(
        f"{V2}/requests.json",
        data=form(
            cat,
            lon,
            lat,
            key["key"],
            description="王女士 13812345678 来电，身份证 36060219800101123X，称楼道堵塞",
        ),
    )
    [typed] = (await anon.get(f"{V2}/requests/{r.json()[0]['service_request_id']}.json")).json()
    assert typed["description"] == "王女士 138****5678 来电，身份证 360602********123X，称楼道堵塞"
    ext = (
        await anon.get(
            f"{V2}/requests.json", params={"service_request_id": ids[1], "extensions": "true"}
        )
    ).json()
    assert ext[0]["extended_attributes"]["channel"] == "hotline"
    assert ext[0]["extended_attributes"]["internal_status"] == "rejected"
    x = xml_of(
        await anon.get(f"{V2}/requests.xml", params={"service_request_id": ",".join(ids)}),
        "service_requests",
    )
    assert [check_request_xml(el)["service_request_id"] for el in x] == [ids[2], ids[1], ids[0]]
    assert x[0].find("description").text is None
    # jurisdiction: the demo district's code filters, another district has none of them
    assert await listed(jurisdiction_id="360602000000", service_request_id=",".join(ids)) == [
        ids[2],
        ids[1],
        ids[0],
    ]


async def test_address_only_and_rate_limit(anon, as_user, conn, monkeypatch) -> None:
    from app import ratelimit
    from app.config import get_settings

    cat = await cgj_category(conn)
    key = await new_key(anon, as_user)
    b = (
        await conn.execute(
            text(
                "SELECT b.id, b.name, g.code FROM buildings b JOIN grids g ON g.id = b.grid_id "
                "WHERE g.code = :g ORDER BY b.id LIMIT 1"
            ),
            {"g": GRID},
        )
    ).one()
    await conn.execute(
        text("UPDATE buildings SET address = '立新路 1 号测试楼' WHERE id = :id"), {"id": b.id}
    )
    base = {"api_key": key["key"], "service_code": cat, "description": "楼道灯不亮"}
    r = await anon.post(f"{V2}/requests.json", data={**base, "address_string": "立新路 1 号测试楼"})
    assert r.status_code == 200, r.text
    case = (
        await anon.get(
            f"/api/v1/cases/{decode(r.json()[0]['service_request_id'])}", headers=as_user("admin")
        )
    ).json()
    assert case["building_id"] == b.id and case["grid"]["code"] == GRID
    r = await anon.post(f"{V2}/requests.json", data={**base, "address_id": str(b.id)})
    assert r.status_code == 200, r.text

    monkeypatch.setattr(get_settings(), "open311_key_per_minute", 2)
    await conn.execute(text("DELETE FROM rate_counters"))  # the posts above counted too
    ratelimit.forget()  # and so did this process's batch of them
    lon, lat = await point_in(conn, GRID)
    for _ in range(2):
        assert (
            await anon.post(f"{V2}/requests.json", data=form(cat, lon, lat, key["key"]))
        ).status_code == 200
    r = await anon.post(f"{V2}/requests.xml", data=form(cat, lon, lat, key["key"]))
    check_error(r, 429)
    assert 1 <= int(r.headers["retry-after"]) <= 60  # one-minute windows


async def test_keys_admin(anon, as_user, conn, demo) -> None:
    key = await new_key(anon, as_user, channel="department", area_ids=[demo["360602001000"]])
    assert key["key"].startswith("o311_") and len(key["key"]) > 40
    assert key["prefix"] == key["key"][:12] and key["active"] and key["channel"] == "department"
    stored = (
        await conn.execute(
            text("SELECT key_hash, user_id FROM open311_keys WHERE id = :id"), {"id": key["id"]}
        )
    ).one()
    import hashlib

    assert stored.key_hash == hashlib.sha256(key["key"].encode()).hexdigest()
    user = (
        await conn.execute(
            text("SELECT is_active, display_name FROM users WHERE id = :id"), {"id": stored.user_id}
        )
    ).one()
    assert user.is_active is False and user.display_name == "12345 市民热线"
    listed = (await anon.get("/api/v1/open311/keys", headers=as_user("admin"))).json()
    assert key["id"] in [k["id"] for k in listed]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    r = await anon.post(
        "/api/v1/open311/keys",
        headers=as_user("admin"),
        json={"integrator": "x", "channel": "app"},
    )
    assert r.status_code == 422
    r = await anon.post(
        "/api/v1/open311/keys",
        headers=as_user("admin"),
        json={"integrator": "x", "channel": "hotline", "area_ids": [987654321]},
    )
    assert r.status_code == 422 and r.json()["field"] == "area_ids"
    assert (
        await anon.delete("/api/v1/open311/keys/987654321", headers=as_user("admin"))
    ).status_code == 404
    r = await anon.delete(f"/api/v1/open311/keys/{key['id']}", headers=as_user("admin"))
    assert r.json()["revoked_at"]
    again = await anon.delete(f"/api/v1/open311/keys/{key['id']}", headers=as_user("admin"))
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    audit = (
        (
            await conn.execute(
                text(
                    "SELECT action FROM audit_log WHERE object_type = 'open311_key' "
                    "AND object_id = :id ORDER BY id"
                ),
                {"id": str(key["id"])},
            )
        )
        .scalars()
        .all()
    )
    assert audit == ["open311_key_created", "open311_key_revoked"]


def test_the_contract_harness_checks_formats() -> None:
    """The schemas' date-time and uri formats are really checked (rfc3339/rfc3986 validators)."""
    from tests.api.open311_support import validator

    ok = {
        "service_request_id": "1",
        "status": "open",
        "service_code": "SR-01",
        "requested_datetime": "2026-11-30T09:30:00.5+08:00",
        "media_url": "https://img.example.com/1.jpg",
    }
    v = validator("requests.json")
    assert v.is_valid([ok])
    assert not v.is_valid([{**ok, "requested_datetime": "2026-11-30 09:30"}])
    assert not v.is_valid([{**ok, "media_url": "not a link"}])
    assert not v.is_valid([{**ok, "status": "pending"}])
    assert not v.is_valid([{**ok, "service_request_id": 1}])


async def test_staff_detail_of_a_case_from_a_phone(anon, as_user, conn) -> None:
    from tests.factories import report_case as _report

    case = await _report(anon, as_user, conn)
    r = await anon.get(f"/api/v1/open311/requests/{case['id']}", headers=as_user("worker"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "case_id": case["id"],
        "channel": "app",
        "integrator": None,
        "token": None,
        "media_url": None,
        "attributes": {},
        "email": None,
        "created_at": None,
    }
    assert (
        await anon.get(f"/api/v1/open311/requests/{case['id']}", headers=as_user("worker2"))
    ).status_code == 404

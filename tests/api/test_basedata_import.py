"""Ledger (台账) import: every row validated, all errors at once with row numbers, all or nothing,
dry-run, column mapping, XLSX and CSV; the export in the same columns, masked."""

from __future__ import annotations

import csv
import io
import json

from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from tests.api.basedata_support import building_id, grid_id, id_number, seed_tags
from tests.helpers import problem

HEADER = [
    "楼栋",
    "单元",
    "楼层",
    "房号",
    "户号",
    "姓名",
    "身份证号",
    "联系电话",
    "与户主关系",
    "户籍",
    "实有",
    "标签",
]


async def _building_name(conn) -> str:  # type: ignore[no-untyped-def]
    b = await building_id(conn)
    return str(
        (
            await conn.execute(text("SELECT name FROM buildings WHERE id = :b"), {"b": b})
        ).scalar_one()
    )


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _xlsx(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def _post(anon, h, g, data: bytes, name: str = "ledger.csv", **form):  # type: ignore[no-untyped-def]
    return await anon.post(
        f"/api/v1/grids/{g}/basedata/import",
        files={"file": (name, data)},
        data={
            k: (json.dumps(v) if isinstance(v, dict) else str(v).lower()) for k, v in form.items()
        },
        headers=h,
    )


async def _count(conn) -> int:  # type: ignore[no-untyped-def]
    return int((await conn.execute(text("SELECT count(*) FROM residents"))).scalar_one())


async def test_all_errors_at_once_and_nothing_stored(anon, as_user, conn) -> None:
    await seed_tags(conn)
    bn = await _building_name(conn)
    g = await grid_id(conn)
    good = id_number(1)
    bad_check = id_number(2)[:-1] + ("X" if id_number(2)[-1] != "X" else "0")
    rows = [
        [bn, "1", "1", "101", "A1", "测试一", good, "13800001111", "户主", "是", "是", "独居老人"],
        [bn, "1", "1", "101", "A1", "测试二", bad_check, "", "配偶", "是", "是", ""],
        ["不存在的楼", "1", "1", "101", "", "测试三", "", "", "户主", "", "", ""],
        [bn, "1", "1", "102", "", "测试四", good, "123", "亲戚?", "也许", "是", "没有的标签"],
        [bn, "1", "1", "103", "", "测试五", "", "", "户主", "是", "是", "社区矫正"],
    ]
    before = await _count(conn)
    r = await _post(anon, as_user("worker"), g, _csv(rows), create_houses=True)
    body = problem(r, 422, "import_invalid")
    got = {(e["row"], e["code"]) for e in body["errors"]}
    assert got == {
        (3, "invalid_id_number"),
        (4, "unknown_building"),
        (5, "duplicate_person"),
        (5, "invalid_phone"),
        (5, "invalid_relation"),
        (5, "invalid_flag"),
        (5, "unknown_tag"),
        (6, "sensitive_tag_forbidden"),
    }
    assert body["rows"] == 5 and body["error_count"] == 8
    assert all(e["field"].startswith(f"rows[{e['row']}].") for e in body["errors"])
    assert await _count(conn) == before
    assert (await conn.execute(text("SELECT count(*) FROM houses"))).scalar_one() == 0


async def test_unknown_house_without_create_and_a_big_file_with_one_bad_row_at_the_end(
    anon, as_user, conn
) -> None:
    bn = await _building_name(conn)
    g = await grid_id(conn)
    h = as_user("worker")
    problem(
        await _post(anon, h, g, _csv([[bn, "1", "1", "101", "", "测试", "", "", "", "", "", ""]])),
        422,
        "import_invalid",
    )
    rows = [
        [
            bn,
            "2",
            str(1 + i // 100),
            f"{i % 100:03d}",
            "",
            f"测试{i}",
            id_number(i, born="19800101"),
            "",
            "户主",
            "是",
            "是",
            "",
        ]
        for i in range(900)
    ]
    last = id_number(999, born="19800101")
    last = last[:-1] + ("0" if last[-1] != "0" else "1")  # a wrong check digit
    rows.append([bn, "2", "1", "999", "", "末行", last, "", "户主", "是", "是", ""])
    before = await _count(conn)
    body = problem(
        await _post(anon, h, g, _xlsx(rows), "big.xlsx", create_houses=True), 422, "import_invalid"
    )
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(902, "invalid_id_number")] or body[
        "errors"
    ][0]["row"] == 902
    assert await _count(conn) == before


async def test_dry_run_then_import_xlsx_then_person_in_two_households(anon, as_user, conn) -> None:
    await seed_tags(conn)
    bn = await _building_name(conn)
    g = await grid_id(conn)
    h = as_user("worker")
    rows = [
        [
            bn,
            "1",
            "3",
            "301",
            "H1",
            "测试甲",
            id_number(11),
            "13811112222",
            "户主",
            "是",
            "是",
            "独居老人",
        ],
        [bn, "1", "3", "301", "H1", "测试乙", id_number(12), "", "子女", "否", "是", ""],
        [
            bn,
            "1",
            "3",
            "302",
            "",
            "测试丙",
            "",
            "0701-6221234",
            "户主",
            "是",
            "否",
            "残疾人、困难家庭",
        ],
    ]
    before = await _count(conn)
    dry = await _post(anon, h, g, _xlsx(rows), "l.xlsx", dry_run=True, create_houses=True)
    assert dry.status_code == 200, dry.text
    assert dry.json() | {"seconds": 0} == {
        "dry_run": True,
        "rows": 3,
        "houses_created": 0,
        "households": 2,
        "residents": 3,
        "seconds": 0,
    }
    assert await _count(conn) == before
    done = await _post(anon, h, g, _xlsx(rows), "l.xlsx", create_houses=True)
    assert done.status_code == 200, done.text
    assert done.json()["houses_created"] == 2 and done.json()["residents"] == 3
    assert await _count(conn) == before + 3
    grid = (await anon.get(f"/api/v1/grids/{g}", headers=h)).json()
    assert (
        grid["households"] == 2
        and grid["population"] == 2
        and grid["households_source"] == "base_data"
    )
    found = (
        await anon.get(
            f"/api/v1/grids/{g}/residents", params={"id_number": id_number(12)}, headers=h
        )
    ).json()
    assert [x["name"] for x in found["items"]] == ["测试乙"]
    # the same person again (another house): refused, naming the row
    again = [[bn, "1", "3", "303", "", "测试乙", id_number(12), "", "户主", "是", "是", ""]]
    body = problem(await _post(anon, h, g, _csv(again), create_houses=True), 422, "import_invalid")
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(2, "duplicate_person")]
    # export: the same columns, masked
    out = await anon.get(f"/api/v1/grids/{g}/basedata/export", headers=h)
    assert out.status_code == 200 and out.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(out.content.decode("utf-8-sig"))))
    assert lines[0] == [
        "楼栋",
        "单元",
        "楼层",
        "房号",
        "房屋用途",
        "户号",
        "姓名",
        "身份证号",
        "联系电话",
        "与户主关系",
        "户籍",
        "实有",
        "标签",
    ]
    jia = next(x for x in lines if x[6] == "测试甲")
    assert jia[7] == id_number(11)[:6] + "********" + id_number(11)[-4:] and jia[8] == "138****2222"
    assert jia[12] == "独居老人" and id_number(11) not in out.text
    x = await anon.get(
        f"/api/v1/grids/{g}/basedata/export", params={"format": "xlsx"}, headers=as_user("centre")
    )
    ws = load_workbook(io.BytesIO(x.content)).worksheets[0]
    names = [r[6] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert "测试甲" not in names and "测**" in names  # the centre: figures, not names


async def test_mapping_and_unreadable_files(anon, as_user, conn) -> None:
    bn = await _building_name(conn)
    g = await grid_id(conn)
    h = as_user("worker")
    header = ["楼", "层", "室", "名字", "证件号"]
    data = _csv([[bn, "5", "501", "测试映射", id_number(21)]], header)
    problem(await _post(anon, h, g, data, create_houses=True), 422, "import_mapping")
    mapping = {"building": "楼", "floor": "层", "room": "室", "name": "名字", "id_number": "证件号"}
    r = await _post(anon, h, g, data, create_houses=True, mapping=mapping)
    assert r.status_code == 200 and r.json()["residents"] == 1, r.text
    body = problem(await _post(anon, h, g, data, mapping={"nope": "楼"}), 422, "import_mapping")
    assert body["field"] == "mapping.nope"
    problem(await _post(anon, h, g, b"PK\x03\x04broken", "x.xlsx"), 422, "import_format")
    problem(await _post(anon, h, g, b"\xff\xfe\x00\x00", "x.csv"), 422, "import_format")
    problem(await _post(anon, h, g, b"", "x.csv"), 422, "import_format")


async def test_a_grid_that_does_not_exist_is_a_404(anon, as_user) -> None:
    """Found by schemathesis: the admin's export of a grid id that exists nowhere was a 500."""
    h = as_user("admin")
    problem(
        await anon.get("/api/v1/grids/9223372036854775806/basedata/export", headers=h),
        404,
        "not_found",
    )
    r = await _post(
        anon,
        h,
        9223372036854775806,
        _csv([["x", "1", "1", "101", "", "测试", "", "", "", "", "", ""]]),
    )
    problem(r, 404, "not_found")

"""The spreadsheets communities keep (台账, XLSX or CSV), read and written: the columns, their
Chinese headers, the values' Chinese spellings. One row is one person; the rows of one house and
household number (户号) form one household. `app.basedata.importer` validates and stores them,
`export_rows` writes the same columns back (masked)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from app.errors import ApiError

COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (field, the header written on export, other headers read on import)
    ("building", "楼栋", ("楼栋名称", "楼号")),
    ("unit", "单元", ()),
    ("floor", "楼层", ("层",)),
    ("room", "房号", ("门牌号", "室")),
    ("use", "房屋用途", ("用途",)),
    ("household", "户号", ()),
    ("name", "姓名", ()),
    ("id_number", "身份证号", ("公民身份号码", "身份证号码")),
    ("phone", "联系电话", ("电话", "手机号", "手机")),
    ("relation", "与户主关系", ("关系",)),
    ("registered", "户籍", ("户籍在此",)),
    ("living", "实有", ("实际居住", "是否实有")),
    ("tags", "标签", ("人员类别", "关爱类别")),
)
FIELDS = tuple(c[0] for c in COLUMNS)
REQUIRED = ("building", "floor", "room", "name")
HEADER = {f: h for f, h, _ in COLUMNS}

RELATIONS = {
    "户主": "head",
    "本人": "head",
    "配偶": "spouse",
    "妻": "spouse",
    "夫": "spouse",
    "妻子": "spouse",
    "丈夫": "spouse",
    "子": "child",
    "女": "child",
    "子女": "child",
    "儿子": "child",
    "女儿": "child",
    "父亲": "parent",
    "母亲": "parent",
    "父母": "parent",
    "孙子": "grandchild",
    "孙女": "grandchild",
    "孙子女": "grandchild",
    "兄弟姐妹": "sibling",
    "兄": "sibling",
    "弟": "sibling",
    "姐": "sibling",
    "妹": "sibling",
    "租户": "tenant",
    "租客": "tenant",
    "其他": "other",
}
RELATION_LABELS = {
    "head": "户主",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "grandchild": "孙子女",
    "sibling": "兄弟姐妹",
    "tenant": "租户",
    "other": "其他",
}
USES = {"住宅": "residential", "商铺": "shop", "门面": "shop", "办公": "office", "空置": "vacant"}
USE_LABELS = {"residential": "住宅", "shop": "商铺", "office": "办公", "vacant": "空置"}
YES = {"是", "y", "yes", "true", "1", "√"}
NO = {"否", "n", "no", "false", "0", "×"}
TAG_SPLIT = re.compile(r"[、,，;；/\s]+")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def read_rows(data: bytes, filename: str) -> Iterator[list[str]]:
    """The rows of the first sheet (XLSX) or of the CSV (UTF-8, with or without BOM, or GB18030),
    as text cells; the first is the header."""
    name = filename.lower()
    if name.endswith(".xlsx") or data[:2] == b"PK":
        try:
            from openpyxl import load_workbook

            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            ws = wb.worksheets[0]
            for row in ws.iter_rows(values_only=True):
                yield [_cell(v) for v in row]
            wb.close()
            return
        except Exception as e:  # a broken or unreadable workbook: a 422, never a 500
            raise ApiError(
                "import_format", field="file", detail="无法读取 XLSX 文件", detail_en=str(e)[:200]
            ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise ApiError(
                "import_format", field="file", detail="CSV 须为 UTF-8 或 GB18030 编码"
            ) from None
    if "\x00" in text:
        raise ApiError("import_format", field="file", detail="文件含有空字符，不是 CSV 文本")
    for row in csv.reader(io.StringIO(text)):
        yield [c.strip() for c in row]


def column_map(header: list[str], mapping: dict[str, str] | None) -> dict[str, int]:
    """field → column index, from the mapping (field → header) or the known headers."""
    index = {h: i for i, h in enumerate(header) if h}
    out: dict[str, int] = {}
    if mapping:
        for f, h in mapping.items():
            if f not in FIELDS:
                raise ApiError(
                    "import_mapping",
                    field=f"mapping.{f}",
                    detail=f"未知的字段：{f}（可用：{'、'.join(FIELDS)}）",
                )
            if h not in index:
                raise ApiError("import_mapping", field=f"mapping.{f}", detail=f"文件中没有列：{h}")
            out[f] = index[h]
    for f, h, others in COLUMNS:
        if f in out:
            continue
        for name in (h, *others, f):
            if name in index:
                out[f] = index[name]
                break
    missing = [f for f in REQUIRED if f not in out]
    if missing:
        raise ApiError(
            "import_mapping",
            field=f"mapping.{missing[0]}",
            detail="缺少必需的列：" + "、".join(HEADER[f] for f in missing),
        )
    return out


def yes_no(value: str, default: bool) -> bool | None:
    v = value.strip().lower()
    if not v:
        return default
    if v in YES:
        return True
    if v in NO:
        return False
    return None


def to_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([HEADER[f] for f in FIELDS])
    w.writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账")
    ws.append([HEADER[f] for f in FIELDS])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

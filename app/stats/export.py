"""Any evaluation table as CSV (UTF-8 with BOM, so Excel reads the Chinese) or XLSX (openpyxl),
with Chinese column headers (English with Accept-Language: en)."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from app.i18n import Lang
from app.stats.definitions import MEASURES, RATES, UNIT_LABELS
from app.stats.service import durations_for

Table = tuple[list[str], list[list[Any]]]


def _h(lang: Lang, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def indicator_table(rows: list[dict[str, Any]], unit: str, lang: Lang) -> Table:
    u_zh, u_en = UNIT_LABELS[unit]
    headers = [_h(lang, "期间", "period"), _h(lang, u_zh, u_en), _h(lang, "编码", "code")]
    if rows:
        f0 = rows[0]["figures"]
        headers += [f0[m]["label"] for m in MEASURES]
        headers += [f0[r.name]["label"] for r in RATES]
        headers.append(f0["unreachable_share"]["label"])
        for d in durations_for(unit):
            headers += [
                f0[d.name]["label"] + _h(lang, "·平均", " mean"),
                f0[d.name]["label"] + "·P90",
            ]
        if "per_1000_households" in f0:
            headers.append(f0["per_1000_households"]["label"])
    headers += [_h(lang, "综合得分", "score"), _h(lang, "评级", "rating")]
    data = []
    for r in rows:
        f = r["figures"]
        line: list[Any] = [r["period"]["label"], r["unit"]["name"], r["unit"]["code"]]
        line += [f[m]["value"] for m in MEASURES]
        line += [f[rt.name]["value"] for rt in RATES]
        line.append(f["unreachable_share"]["value"])
        for d in durations_for(unit):
            line += [f[d.name]["mean"], f[d.name]["p90"]]
        if "per_1000_households" in f:
            line.append(f["per_1000_households"]["value"])
        line += [r["score"], r["rating_label"]]
        data.append(line)
    return headers, data


def ranking_table(rows: list[dict[str, Any]], lang: Lang) -> Table:
    rate_names = [r for r in RATES if r.name in (rows[0]["rates"] if rows else {})]
    headers = [
        _h(lang, "排名", "rank"),
        _h(lang, "单位", "unit"),
        _h(lang, "编码", "code"),
        _h(lang, "综合得分", "score"),
        _h(lang, "评级", "rating"),
        _h(lang, "受理数", "received"),
        *[r.en if lang == "en" else r.zh for r in rate_names],
        _h(lang, "上期排名", "previous rank"),
        _h(lang, "上期得分", "previous score"),
        _h(lang, "得分变化", "score change"),
        _h(lang, "名次变化", "rank change"),
    ]
    data = []
    for r in rows:
        p = r["previous"] or {}
        data.append(
            [
                r["rank"],
                r["unit"]["name"],
                r["unit"]["code"],
                r["score"],
                r["rating_label"],
                r["received"],
                *[r["rates"][x.name] for x in rate_names],
                p.get("rank"),
                p.get("score"),
                r["score_change"],
                r["rank_change"],
            ]
        )
    return headers, data


def hotspot_table(result: dict[str, Any], lang: Lang) -> Table:
    headers = [
        _h(lang, "网格", "grid"),
        _h(lang, "网格编码", "grid code"),
        _h(lang, "事项类别", "category"),
        _h(lang, "类别编码", "category code"),
        _h(lang, "事件数", "cases"),
        _h(lang, "网格合计", "grid total"),
        _h(lang, "每千户事件数", "per 1,000 households"),
    ]
    names = {c["code"]: c["name"] for c in result["categories"]}
    data = [
        [
            g["grid"]["name"],
            g["grid"]["code"],
            names.get(code, code),
            code,
            n,
            g["total"],
            g["per_1000_households"],
        ]
        for g in result["items"]
        for code, n in g["counts"].items()
    ]
    return headers, data


def channel_table(result: dict[str, Any], lang: Lang) -> Table:
    headers = [
        _h(lang, "渠道", "channel"),
        _h(lang, "渠道编码", "code"),
        _h(lang, "事件数", "cases"),
    ]
    return headers, [[i["label"], i["channel"], i["count"]] for i in result["items"]]


def to_csv(table: Table) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(table[0])
    for row in table[1]:
        w.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(table: Table, title: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append(table[0])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in table[1]:
        ws.append(row)
    for i, h in enumerate(table[0], start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(
            10, min(40, len(str(h)) * 2 + 2)
        )
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()

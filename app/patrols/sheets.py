"""The printable forms of field work's ledgers (the work log, the weekly board): one page of HTML
tables to print, one XLSX workbook of sheets (openpyxl), Chinese headers. What the worker did
becomes the ledger by itself (基层减负: nothing typed again)."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font


@dataclass(frozen=True)
class Sheet:
    name: str
    headers: list[str]
    rows: list[list[Any]]
    foot: list[Any] | None = None
    """A last row in bold (totals)."""
    note: str | None = field(default=None)
    """A line under the section's heading in HTML."""


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "是" if v else "否"
    return str(v)


def to_html(title: str, subtitle: str, sheets: Sequence[Sheet]) -> str:
    e = html.escape
    parts = []
    for s in sheets:
        head = "".join(f"<th>{e(h)}</th>" for h in s.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>" for row in s.rows
        )
        foot = (
            "<tfoot><tr>" + "".join(f"<th>{e(_cell(v))}</th>" for v in s.foot) + "</tr></tfoot>"
            if s.foot
            else ""
        )
        heading = f"<h2>{e(s.name)}</h2>" if len(sheets) > 1 else ""
        note = f"<p>{e(s.note)}</p>" if s.note else ""
        parts.append(
            f"{heading}{note}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"{foot}</table>"
        )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>body{{font-family:sans-serif}}"
        "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #999;"
        "padding:2px 8px;text-align:right}@media print{button{display:none}}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(subtitle)}</p>{''.join(parts)}</body></html>"
    )


def to_xlsx(title: str, sheets: Sequence[Sheet]) -> bytes:
    """A sheet per section: the title in the first row, the headers (bold, frozen) in the second."""
    wb = Workbook()
    first = wb.active
    assert first is not None
    for i, s in enumerate(sheets):
        ws = first if i == 0 else wb.create_sheet()
        ws.title = s.name[:31]
        ws.append([title])
        ws.append(s.headers)
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in s.rows:
            ws.append(row)
        if s.foot:
            ws.append(s.foot)
        ws.freeze_panes = "A3"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()

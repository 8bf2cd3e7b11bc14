"""The monthly evaluation report of a department (部门月度考评报告): a printable HTML page with the
month's figures, its rating and rank, and an inline SVG trend chart of the last twelve months."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from app.stats.definitions import MEASURES, RATES

TREND_RATES = (
    ("handled_on_time_rate", "按期处置率", "#d9480f"),
    ("closure_rate", "结案率", "#2b8a3e"),
    ("satisfaction_rate", "满意率", "#1c7ed6"),
)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _num(v: Any) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"


def trend_svg(months: list[tuple[str, dict[str, Any] | None]]) -> str:
    """Bars: received cases per month (left axis); lines: three rates (right axis, 0–100%)."""
    w, h, left, right, top, bottom = 760, 280, 50, 50, 20, 40
    pw, ph = w - left - right, h - top - bottom
    n = len(months)
    step = pw / max(n, 1)
    top_count = max([(r["figures"]["received"]["value"] if r else 0) for _, r in months] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="近12个月趋势" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>',
    ]
    for k in range(5):
        y = top + ph * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(top_count * (4 - k) / 4)}</text>'
        )
        parts.append(f'<text x="{left + pw + 6}" y="{y + 4:.1f}">{100 - 25 * k}%</text>')
    for i, (label, r) in enumerate(months):
        x = left + step * i
        count = r["figures"]["received"]["value"] if r else 0
        bh = ph * count / top_count
        parts.append(
            f'<rect x="{x + step * 0.2:.1f}" y="{top + ph - bh:.1f}" width="{step * 0.6:.1f}" '
            f'height="{bh:.1f}" fill="#ced4da"><title>{escape(label)}: {count}</title></rect>'
        )
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{h - bottom + 16}" text-anchor="middle">{escape(label[2:])}</text>'
        )
    for key, _name, colour in TREND_RATES:
        pts = []
        for i, (_, r) in enumerate(months):
            v = r["figures"][key]["value"] if r else None
            if v is not None:
                pts.append((left + step * i + step / 2, top + ph * (1 - v)))
        if pts:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            for x, y in pts:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
    for j, (_, name, colour) in enumerate((("", "受理数", "#ced4da"), *TREND_RATES)):
        x = left + 10 + j * 120
        parts.append(f'<rect x="{x}" y="{h - 14}" width="12" height="8" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{h - 6}">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(
    department: dict[str, Any],
    month: date,
    row: dict[str, Any] | None,
    rank: tuple[int, int] | None,
    months: list[tuple[str, dict[str, Any] | None]],
    generated_at: str,
) -> str:
    title = f"{department['name']} {month.year}年{month.month}月考评报告"
    figures = row["figures"] if row else {}
    lines = []
    if row:
        for r in RATES:
            f = figures[r.name]
            lines.append(
                f"<tr><td>{escape(r.zh)}</td><td class=n>{_pct(f['value'])}</td>"
                f"<td class=n>{_num(f['numerator'])} / {_num(f['denominator'])}</td>"
                f'<td><a href="{escape(f["cases_url"])}">明细</a></td></tr>'
            )
        for key in ("sign_in_hours", "handle_hours", "close_hours"):
            f = figures[key]
            lines.append(
                f"<tr><td>{escape(f['label'])}</td><td class=n>平均 {_num(f['mean'])}</td>"
                f"<td class=n>P90 {_num(f['p90'])}（{f['n']} 件）</td>"
                f'<td><a href="{escape(f["cases_url"])}">明细</a></td></tr>'
            )
    counts = "".join(
        f"<tr><td>{escape(figures[m]['label'])}</td><td class=n>{_num(figures[m]['value'])}</td>"
        f'<td><a href="{escape(figures[m]["cases_url"])}">明细</a></td></tr>'
        for m in MEASURES
        if row
    )
    rating = (
        f"<p class=rating>综合得分 <b>{_num(row['score'])}</b>，评级 <b>{escape(row['rating_label'])}</b>"
        + (f"，在 {rank[1]} 个部门中排名第 <b>{rank[0]}</b>" if rank else "")
        + "</p>"
        if row
        else "<p class=rating>本月没有派遣给该部门的事件。</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 1.5em; }}
table {{ border-collapse: collapse; margin: .5em 0; }}
td, th {{ border: 1px solid #bbb; padding: 3px 8px; font-size: 13px; }}
td.n {{ text-align: right; }} .rating {{ font-size: 15px; }}
.meta {{ color: #666; font-size: 12px; }}
@media print {{ a {{ color: inherit; text-decoration: none; }} body {{ margin: 1cm; }} }}
</style></head><body>
<h1>{escape(title)}</h1>
<p class=meta>部门编码 {escape(department["code"])}；统计期间 {month.year}年{month.month}月（按上报时间，Asia/Shanghai）；
生成于 {escape(generated_at)}。口径见 docs/evaluation.md。</p>
{rating}
<h2>主要指标</h2>
<table><tr><th>指标</th><th>数值</th><th>分子 / 分母</th><th></th></tr>{"".join(lines)}</table>
<h2>近12个月趋势</h2>
{trend_svg(months)}
<h2>事件数</h2>
<table><tr><th>项目</th><th>数量</th><th></th></tr>{counts}</table>
</body></html>
"""

"""Grid sizing rules: a city grid is about 300 households; a rural grid is one natural village
(自然村) or villager group (村民小组); a special grid (专属网格) follows an institution's boundary
and must name it in its notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["KINDS", "GridSize", "SizingBand", "SizingFinding", "check_sizing"]

CITY = "city"
RURAL = "rural"
SPECIAL = "special"
KINDS: frozenset[str] = frozenset({CITY, RURAL, SPECIAL})
_KIND_ALIASES: dict[str, str] = {
    "城市": CITY,
    "城市社区网格": CITY,
    "农村": RURAL,
    "农村网格": RURAL,
    "专属": SPECIAL,
    "专属网格": SPECIAL,
}
_KIND_ZH: dict[str, str] = {CITY: "城市网格", RURAL: "农村网格", SPECIAL: "专属网格"}

TOO_MANY = "too_many_households"
TOO_FEW = "too_few_households"
MISSING = "missing_households"
SPECIAL_WITHOUT_INSTITUTION = "special_without_institution"
UNKNOWN_KIND = "unknown_kind"


@dataclass
class SizingBand:
    """Household bands per grid kind (inclusive). Special grids have no band."""

    city_min: int = 250
    city_max: int = 350
    rural_min: int = 30
    rural_max: int = 300


@dataclass(frozen=True)
class GridSize:
    """What the sizing check needs to know about one grid."""

    id: str
    code: str
    name: str
    kind: str
    households: int | None
    population: int | None
    notes: str | None


@dataclass(frozen=True)
class SizingFinding:
    """One grid out of band. ``code`` is the grid's code; ``code_`` the reason (also ``reason``)."""

    id: str
    code: str
    name: str
    kind: str
    code_: str
    message: str
    message_en: str
    value: int | None
    expected_min: int | None
    expected_max: int | None

    @property
    def reason(self) -> str:
        return self.code_


def _band(kind: str, band: SizingBand) -> tuple[int, int]:
    if kind == CITY:
        return band.city_min, band.city_max
    return band.rural_min, band.rural_max


def check_sizing(grids: Iterable[GridSize], band: SizingBand | None = None) -> list[SizingFinding]:
    """Findings for grids whose household count is missing or outside the band for their kind,
    special grids whose notes don't name the institution, and unknown kinds (in input order)."""
    band = band or SizingBand()
    out: list[SizingFinding] = []
    for g in grids:
        kind = _KIND_ALIASES.get(g.kind, g.kind)

        def finding(
            reason: str,
            zh: str,
            en: str,
            lo: int | None = None,
            hi: int | None = None,
            g: GridSize = g,
        ) -> SizingFinding:
            return SizingFinding(
                id=g.id,
                code=g.code,
                name=g.name,
                kind=g.kind,
                code_=reason,
                message=zh,
                message_en=en,
                value=g.households,
                expected_min=lo,
                expected_max=hi,
            )

        if kind not in KINDS:
            out.append(
                finding(
                    UNKNOWN_KIND,
                    f"网格类型未知：{g.kind}（应为城市、农村或专属网格）",
                    f"unknown grid kind {g.kind!r} (expected city, rural or special)",
                )
            )
            continue
        if kind == SPECIAL:
            if not (g.notes or "").strip():
                out.append(
                    finding(
                        SPECIAL_WITHOUT_INSTITUTION,
                        "专属网格须在备注中写明所依托的单位（学校、医院、园区、市场等）",
                        "a special grid must name its institution (school, hospital, industrial "
                        "park, market…) in its notes",
                    )
                )
            continue
        lo, hi = _band(kind, band)
        label = _KIND_ZH[kind]
        if g.households is None:
            out.append(
                finding(
                    MISSING,
                    f"{label}未填写户数（应为 {lo}–{hi} 户）",
                    f"{kind} grid has no household count (expected {lo}–{hi})",
                    lo,
                    hi,
                )
            )
        elif g.households > hi:
            out.append(
                finding(
                    TOO_MANY,
                    f"{label}户数过多：{g.households} 户（应为 {lo}–{hi} 户），建议拆分",
                    f"{kind} grid has too many households: {g.households} "
                    f"(expected {lo}–{hi}); consider splitting it",
                    lo,
                    hi,
                )
            )
        elif g.households < lo:
            out.append(
                finding(
                    TOO_FEW,
                    f"{label}户数过少：{g.households} 户（应为 {lo}–{hi} 户），建议合并",
                    f"{kind} grid has too few households: {g.households} "
                    f"(expected {lo}–{hi}); consider merging it",
                    lo,
                    hi,
                )
            )
    return out

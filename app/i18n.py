"""Language of human-readable labels: Chinese by default, English on request (Accept-Language)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Header

Lang = Literal["zh", "en"]


def negotiate(accept_language: str | None) -> Lang:
    """Pick zh or en from an Accept-Language header (zh wins ties and unknowns)."""
    if not accept_language:
        return "zh"
    best: tuple[float, Lang] = (-1.0, "zh")
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        tag = tag.strip().lower()
        lang: Lang | None = "en" if tag.startswith("en") else "zh" if tag.startswith("zh") else None
        if lang and q > best[0]:
            best = (q, lang)
    return best[1]


def pick(lang: Lang, zh: str, en: str) -> str:
    return en if lang == "en" else zh


GRID_KIND_LABELS: dict[str, tuple[str, str]] = {
    "city": ("城市社区网格", "city grid"),
    "rural": ("农村网格", "rural grid"),
    "special": ("专属网格", "special grid"),
}

AREA_LEVEL_LABELS: dict[str, tuple[str, str]] = {
    "city": ("市", "city"),
    "district": ("区/县", "district"),
    "street": ("街道/镇", "street / town"),
    "community": ("社区/村", "community / village"),
}


def label(table: dict[str, tuple[str, str]], key: str, lang: Lang) -> str:
    zh, en = table.get(key, (key, key))
    return pick(lang, zh, en)


async def _lang_dependency(
    accept_language: str | None = Header(None, include_in_schema=False),
) -> Lang:
    return negotiate(accept_language)


RequestLang = Annotated[Lang, Depends(_lang_dependency)]
"""Route parameter: the caller's language for labels (from Accept-Language)."""

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "grid_worker": ("网格员", "grid worker"),
    "grid_leader": ("网格长", "grid leader"),
    "community": ("社区工作人员", "community staff"),
    "street": ("街道工作人员", "street office staff"),
    "department": ("职能部门", "department"),
    "centre": ("区综治中心", "district governance centre"),
    "admin": ("系统管理员", "administrator"),
}

"""Language of human-readable labels: Chinese by default, English on request (Accept-Language)."""

from __future__ import annotations

from contextvars import ContextVar
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


_LANG: ContextVar[Lang] = ContextVar("lang", default="zh")


def current_lang() -> Lang:
    """The language of the request being answered (set by `RequestLang`; zh outside requests):
    what `app.schemas.LabelledModel` fills its labels in."""
    return _LANG.get()


def use_lang(accept_language: str | None) -> Lang:
    """The request's language from its Accept-Language, set for the rest of the request (what
    `RequestLang` does; a hot route that resolves no dependencies calls it itself)."""
    lang = negotiate(accept_language)
    _LANG.set(lang)
    return lang


async def _lang_dependency(
    accept_language: str | None = Header(None, include_in_schema=False),
) -> Lang:
    return use_lang(accept_language)


request_lang = _lang_dependency
"""The same, as a router-wide dependency (`APIRouter(dependencies=[Depends(request_lang)])`)."""


RequestLang = Annotated[Lang, Depends(_lang_dependency)]
"""Route parameter: the caller's language for labels (from Accept-Language)."""

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "grid_worker": ("网格员", "grid worker"),
    "grid_leader": ("网格长", "grid leader"),
    "community": ("社区工作人员", "community staff"),
    "governance": ("综治专干", "comprehensive-governance officer"),
    "street": ("街道工作人员", "street office staff"),
    "department": ("职能部门", "department"),
    "centre": ("区综治中心", "district governance centre"),
    "admin": ("系统管理员", "administrator"),
}

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "reported": ("已上报", "reported"),
    "registered": ("已立案", "registered"),
    "rejected": ("不予立案", "rejected"),
    "whistled": ("已吹哨", "whistle blown"),
    "dispatched": ("已派遣", "dispatched"),
    "signed_in": ("已签收", "signed in"),
    "returned": ("已退回", "returned"),
    "handling": ("处置中", "handling"),
    "suspended": ("已挂起", "suspended"),
    "feedback": ("已反馈", "feedback given"),
    "verified": ("已核查", "verified"),
    "rework": ("返工", "rework"),
    "closed": ("已结案", "closed"),
}

URGENCY_LABELS: dict[str, tuple[str, str]] = {
    "normal": ("一般", "normal"),
    "urgent": ("紧急", "urgent"),
    "critical": ("特急", "critical"),
}

ACTION_LABELS: dict[str, tuple[str, str]] = {
    "reported": ("上报", "reported"),
    "photo_added": ("上传照片", "photo added"),
    "marked_duplicate": ("标记为重复件", "marked as a duplicate"),
    "duplicate_received": ("收到重复上报", "a duplicate was merged in"),
    "placed": ("定位到网格", "placed in a grid"),
}


def register_action_labels(labels: dict[str, tuple[str, str]]) -> None:
    """Add a module's action labels (called from above, `app.extensions`); one meaning each."""
    for action, entry in labels.items():
        if ACTION_LABELS.setdefault(action, entry) != entry:
            raise ValueError(f"action {action!r} is already labelled {ACTION_LABELS[action]}")

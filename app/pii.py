"""Personal data (PIPL): stored once, masked in every response unless revealed on purpose.

`mask_phone` / `mask_id_number` mask a structured field. `mask_text` is the one detector for
free text (descriptions, notes, reasons) leaving the service for readers who see masked data:
it finds, in any text (Chinese around them, full-width digits and letters too):
- mainland mobile numbers: `13812345678`, `138 1234 5678`, `138-1234-5678`, `+86 138…`,
  `0086…`, `(+86)…`, `１３８…`;
- landlines with an area code: `0791-88123456`, `(0791) 8812 3456`, `+86 791 88123456`;
- 18-digit resident ID numbers (6-8-4, with or without spaces or dashes, check digit X/x);
- bank card numbers (15–19 digits from 3–6, grouped or not, that pass the Luhn check);
- licence plates (`赣A12345`, `赣A·D12345`, new-energy six-character ones);
- e-mail addresses.
Each is masked in place (its separators and length kept): 138****5678, 360602********123X,
6222 **** **** 1234, 赣A***45, w***@example.com. The text around them is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def mask_phone(value: str | None) -> str | None:
    """138****1234: keep the first 3 and last 4 digits of a mobile number."""
    if not value:
        return value
    digits = value.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(value: str | None) -> str | None:
    """Resident ID numbers: keep the first 6 (region) and the last 4 characters."""
    if not value:
        return value
    v = value.strip()
    if len(v) <= 10:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


# --- the detector ------------------------------------------------------------------------------

# Full-width forms (U+FF01..U+FF5E) and the ideographic space, one character for one: positions
# in the folded text are positions in the original.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_SEP = r"[ \-\u00a0]?"
_NOT_DIGIT_BEFORE = r"(?<![0-9])"
_NOT_DIGIT_AFTER = r"(?![0-9])"
_PREFIX = r"(?:(?:\+|00)86[ \-]?|\(\+?86\)[ \-]?)"

_ID = re.compile(
    _NOT_DIGIT_BEFORE
    + r"[1-9]\d{5}"
    + _SEP
    + r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    + _SEP
    + r"\d{3}[0-9Xx]"
    + r"(?![0-9A-Za-z])",
    re.ASCII,
)
_MOBILE = re.compile(
    r"(?<![0-9+])"
    + _PREFIX
    + r"?"
    + r"1[3-9]\d"
    + _SEP
    + r"\d{4}"
    + _SEP
    + r"\d{4}"
    + _NOT_DIGIT_AFTER,
    re.ASCII,
)
_LANDLINE = re.compile(
    r"(?<![0-9+])(?:"
    + _PREFIX
    + r"\(?[1-9]\d{1,2}\)?|\(0[1-9]\d{1,2}\)|0[1-9]\d{1,2})"
    + r"[ \-]?"
    + r"(?P<sub>[2-9]\d{2,3}"
    + _SEP
    + r"\d{4})"
    + _NOT_DIGIT_AFTER,
    re.ASCII,
)
_CARD = re.compile(
    _NOT_DIGIT_BEFORE
    + r"[3-6]\d{3}(?:[ \-]?\d{4}){2}[ \-]?\d{3,4}(?:[ \-]?\d{1,3})?"
    + _NOT_DIGIT_AFTER,
    re.ASCII,
)
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE = re.compile(
    f"[{_PROVINCES}]"
    + r"[A-HJ-NP-Z][·•\.\- ]?(?:[A-HJ-NP-Z0-9]{5,6}|[A-HJ-NP-Z0-9]{4}[挂学警港澳])"
    + r"(?![A-Za-z0-9])",
    re.ASCII,
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
    re.ASCII,
)
_WIDE = re.compile("[\uff01-\uff5e\u3000]")
"""Text without full-width forms needs no folding (most text: folding is the dearest step)."""
_NUMBER = re.compile(r"[0-9](?:[ \-\u00a0()+]{0,3}[0-9]){8}")
"""Nine digits at most a few separators apart: every number the detector masks has them (the
shortest, a landline, has an area code and seven digits); "3号楼" and "2026年12月1日" do not."""
_PLATE_GATE = re.compile(f"[{_PROVINCES}][A-HJ-NP-Z]")
"""A province's abbreviation and a letter: where a plate can be."""
_NEEDS = {
    "email": "email",
    "id_number": "number",
    "bank_card": "number",
    "mobile": "number",
    "landline": "number",
    "plate": "plate",
}
"""The gate each detector needs (`_fold` looks for each with one scan, each starting with a
character class the regular expression engine scans for in C): text with none of them, most
text, costs those scans; each detector runs only on text where its kind can be."""


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digit_positions(folded: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if "0" <= folded[i] <= "9"]


def _keep(positions: list[int], head: int, tail: int) -> set[int]:
    return set(positions[:head]) | set(positions[len(positions) - tail :])


def _mobile(folded: str, m: re.Match[str]) -> set[int] | None:
    digits = _digit_positions(folded, m.start(), m.end())
    national = digits[-11:]
    keep = _keep(national, 3, 4) | set(digits[: len(digits) - 11])
    return {i for i in digits if i not in keep}


def _landline(folded: str, m: re.Match[str]) -> set[int] | None:
    # The area code (and a +86) stays; of the subscriber's 7 or 8 digits, the last 2.
    sub = _digit_positions(folded, m.start("sub"), m.end("sub"))
    return set(sub[: len(sub) - 2])


def _id(folded: str, m: re.Match[str]) -> set[int] | None:
    chars = [i for i in range(m.start(), m.end()) if folded[i] not in " -\u00a0"]
    keep = _keep(chars, 6, 4)
    return {i for i in chars if i not in keep}


def _card(folded: str, m: re.Match[str]) -> set[int] | None:
    digits = _digit_positions(folded, m.start(), m.end())
    if not 15 <= len(digits) <= 19 or not luhn("".join(folded[i] for i in digits)):
        return None
    keep = _keep(digits, 4, 4)
    return {i for i in digits if i not in keep}


def _plate(folded: str, m: re.Match[str]) -> set[int] | None:
    chars = [i for i in range(m.start() + 2, m.end()) if folded[i] not in "·•.- "]
    return set(chars[: len(chars) - 2])


def _email(folded: str, m: re.Match[str]) -> set[int] | None:
    at = folded.index("@", m.start())
    return set(range(m.start() + 1, at)) if at - m.start() > 1 else {m.start()}


_DETECTORS: tuple[
    tuple[str, re.Pattern[str], Callable[[str, re.Match[str]], set[int] | None]], ...
] = (
    ("email", _EMAIL, _email),
    ("id_number", _ID, _id),
    ("bank_card", _CARD, _card),
    ("mobile", _MOBILE, _mobile),
    ("landline", _LANDLINE, _landline),
    ("plate", _PLATE, _plate),
)
"""In order of precedence: a span taken by one is not looked at by the next."""


def _fold(value: str) -> tuple[str, set[str]] | None:
    """`value` with full-width forms folded to ASCII, and what `_GATE` found in it; None when
    it holds nothing to mask."""
    folded = value.translate(_FOLD) if _WIDE.search(value) else value
    kinds = set()
    if "@" in folded:
        kinds.add("email")
    if _NUMBER.search(folded):
        kinds.add("number")
    if _PLATE_GATE.search(folded):
        kinds.add("plate")
    return (folded, kinds) if kinds else None


def find(value: str) -> list[tuple[str, int, int]]:
    """The personal data in `value`: (kind, start, end), in order."""
    gated = _fold(value) if value else None
    if gated is None:
        return []
    return [(k, s, e) for k, s, e, _ in _scan(*gated)]


def _scan(folded: str, kinds: set[str]) -> list[tuple[str, int, int, set[int]]]:
    taken: list[tuple[int, int]] = []
    found: list[tuple[str, int, int, set[int]]] = []
    for kind, pattern, masker in _DETECTORS:
        if _NEEDS[kind] not in kinds:
            continue
        for m in pattern.finditer(folded):
            s, e = m.span()
            if any(s < te and ts < e for ts, te in taken):
                continue
            hidden = masker(folded, m)
            if hidden is None:
                continue
            taken.append((s, e))
            found.append((kind, s, e, hidden))
    found.sort(key=lambda f: f[1])
    return found


def mask_text(value: str | None) -> str | None:
    """Free text with every piece of personal data in it masked (see the module)."""
    if not value:
        return value
    gated = _fold(value)
    if gated is None:
        return value
    found = _scan(*gated)
    if not found:
        return value
    chars = list(value)
    for f in found:
        for i in f[3]:
            chars[i] = "*"
    return "".join(chars)


def mask_json(value: Any) -> Any:
    """Every string inside a JSON-like value through `mask_text` (keys are left alone)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    return value

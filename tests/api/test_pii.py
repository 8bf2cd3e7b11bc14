"""The one PII detector (app.pii.mask_text): property tests over every form issue 17 lists,
generated inside Chinese text. Pure: no database."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from app.pii import find, luhn, mask_json, mask_text

CHINESE = st.text(
    alphabet=st.sampled_from(
        "居民反映楼道堆放杂物请尽快处理王女士李先生来电称邻里纠纷，。、：；！？（）的了在"
    ),
    max_size=20,
)
SEP = st.sampled_from(["", " ", "-"])
FULL = str.maketrans("0123456789Xx+-", "０１２３４５６７８９Ｘｘ＋－")


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(the form as written, its 11 digits)."""
    number = draw(st.sampled_from("3456789").map(lambda d: "1" + d)) + draw(digits(9))
    sep = draw(SEP)
    body = number[:3] + sep + number[3:7] + sep + number[7:]
    prefix = draw(st.sampled_from(["", "+86 ", "+86", "0086 ", "0086", "(+86)", "+86-"]))
    form = prefix + body
    if draw(st.booleans()):
        form = form.translate(FULL)
    return form, number


@st.composite
def landlines(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(st.sampled_from(["010", "021", "0791", "0701", "0755", "0898"]))
    sub = draw(st.sampled_from("2345678")) + draw(digits(draw(st.sampled_from([6, 7]))))
    sep = draw(st.sampled_from(["-", " ", ""]))
    style = draw(st.integers(0, 2))
    if style == 0:
        form = area + sep + sub
    elif style == 1:
        form = f"({area}){sep.strip()}{sub}"
    else:
        form = "+86 " + area[1:] + " " + sub
    return form, sub


def id_check(body: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


@st.composite
def id_numbers(draw: st.DrawFn) -> tuple[str, str]:
    region = draw(st.sampled_from(["360602", "110101", "440305", "510104"]))
    year = draw(st.integers(1930, 2020))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    seq = draw(digits(3))
    body = f"{region}{year}{month:02d}{day:02d}{seq}"
    check = id_check(body)
    if check == "X" and draw(st.booleans()):
        check = "x"
    number = body + check
    sep = draw(st.sampled_from(["", " ", "-"]))
    form = number[:6] + sep + number[6:14] + sep + number[14:]
    return form, number


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, str]:
    n = draw(st.sampled_from([16, 16, 17, 18, 19]))
    body = draw(st.sampled_from(["62", "45", "51", "60"])) + draw(digits(n - 3))
    number = next(body + d for d in "0123456789" if luhn(body + d))
    if draw(st.booleans()):
        form = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    else:
        form = number
    return form, number


@st.composite
def plates(draw: st.DrawFn) -> tuple[str, str]:
    province = draw(st.sampled_from("京沪赣粤川苏浙"))
    letter = draw(st.sampled_from("ABCDEFGH"))
    alnum = st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
    n = draw(st.sampled_from([5, 6]))
    tail = "".join(draw(alnum) for _ in range(n))
    sep = draw(st.sampled_from(["", "·"]))
    form = province + letter + sep + tail
    return form, province + letter + tail


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(st.from_regex(r"[a-z][a-z0-9._]{2,12}[a-z0-9]", fullmatch=True))
    domain = draw(st.sampled_from(["qq.com", "163.com", "example.com.cn", "gov.cn"]))
    form = f"{local}@{domain}"
    return form, form


def plain(value: str) -> str:
    """Digits and letters only, full-width folded: what a reader could recover."""
    folded = value.translate({c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)})
    return re.sub(r"[^0-9A-Za-z@.]", "", folded)


ANY_PII = st.one_of(mobiles(), landlines(), id_numbers(), cards(), plates(), emails())


@settings(max_examples=400, deadline=None)
@given(before=CHINESE, pii=ANY_PII, after=CHINESE)
def test_every_form_inside_chinese_text_is_masked(before: str, pii: tuple[str, str], after: str):
    form, number = pii
    text = f"{before}{form}{after}"
    out = mask_text(text)
    assert out is not None
    # The text around it is kept, character for character; the length too.
    assert out.startswith(before) and out.endswith(after) and len(out) == len(text)
    # The number cannot be read back from what is shown.
    assert plain(number) not in plain(out)
    assert "*" in out[len(before) : len(out) - len(after)]
    assert find(text)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.tuples(CHINESE.filter(bool), ANY_PII), min_size=1, max_size=4),
    tail=CHINESE,
)
def test_several_in_one_text_and_idempotent(parts, tail: str):
    text = "".join(b + f for b, (f, _) in parts) + tail
    out = mask_text(text)
    assert out is not None and len(out) == len(text)
    # Each number is looked for where it was (masking keeps lengths): the digits kept of
    # neighbours (6200…0005、6200…0000、010-…00) may spell a number across them.
    at = 0
    for b, (f, number) in parts:
        at += len(b)
        assert plain(number) not in plain(out[at : at + len(f)])
        at += len(f)
    assert mask_text(out) == out


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from("居民反映楼道堆放杂物，。号楼单元室年月日时分共户人平方米"),
        max_size=30,
    ),
    numbers=st.lists(st.integers(0, 99_999), max_size=4),
)
def test_ordinary_text_and_small_numbers_are_left_alone(text: str, numbers: list[int]):
    value = text + "".join(f"{n}号" for n in numbers)
    assert mask_text(value) == value


def test_the_forms_of_the_issue() -> None:
    cases = {
        "王女士 13812345678 来电": "王女士 138****5678 来电",
        "电话 138 1234 5678。": "电话 138 **** 5678。",
        "电话138-1234-5678": "电话138-****-5678",
        "+86 138 1234 5678": "+86 138 **** 5678",
        "008613812345678": "0086138****5678",
        "全角１３８１２３４５６７８": "全角１３８****５６７８",
        "座机 0791-88123456": "座机 0791-******56",
        "身份证 36060219800101123X": "身份证 360602********123X",
        "身份证 360602 19800101 123x": "身份证 360602 ******** 123x",
        "车牌赣A12345": "车牌赣A***45",
        "邮件 wang@example.com": "邮件 w***@example.com",
        "案件号 20261130000123，3 号楼 2 单元 301 室": "案件号 20261130000123，3 号楼 2 单元 301 室",
    }
    for given_, shown in cases.items():
        assert mask_text(given_) == shown, given_
    assert mask_text(None) is None and mask_text("") == ""
    assert mask_json({"reason": "联系 13812345678", "n": 13812345678, "l": ["a@b.cn"]}) == {
        "reason": "联系 138****5678",
        "n": 13812345678,
        "l": ["*@b.cn"],
    }

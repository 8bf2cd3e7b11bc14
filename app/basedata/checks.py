"""Checks of the base data's personal fields: the resident identity number (GB 11643: 18
characters, a real birth date, the ISO 7064 MOD 11-2 check digit) and phone formats (mainland
mobiles, landlines with an area code). Each returns the normalised value or raises `ApiError`
with a stable code and the field at fault."""

from __future__ import annotations

import re
from datetime import date

from app.errors import ApiError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID = re.compile(r"^[1-9]\d{16}[0-9X]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0[1-9]\d{1,2}-?[2-9]\d{6,7}$")

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "invalid_id_number": (422, "身份证号码无效", "Invalid resident identity number"),
    "invalid_phone": (422, "电话号码格式无效", "Invalid phone number"),
    "duplicate_person": (409, "该身份证号码的人员已登记", "A person with this ID number exists"),
    "unknown_tag": (422, "标签不在本区目录中", "The tag is not in the district's catalogue"),
    "sensitive_tag_forbidden": (
        403,
        "无权设置敏感标签（需 basedata:sensitive 权限）",
        "Setting a sensitive tag needs basedata:sensitive",
    ),
    "house_exists": (409, "该房屋已登记", "The house is already registered"),
    "household_ended": (409, "该户已迁出", "The household has left the house"),
    "reveal_purpose_required": (422, "查看明文须说明用途", "Revealing needs a purpose"),
    "person_removed": (409, "该人员已精简为统计数或已删除", "The person was reduced or deleted"),
    "import_invalid": (
        422,
        "导入文件有错误，未保存任何数据",
        "The file has errors; nothing stored",
    ),
    "import_format": (422, "无法读取导入文件", "The file cannot be read"),
    "import_mapping": (422, "列映射无效", "Invalid column mapping"),
}


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    """None when valid; else why not (Chinese, for the import report)."""
    if not _ID.match(value):
        return "应为18位，前17位为数字，末位为数字或X"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "出生日期无效"
    if born.year < 1900 or born > date(2100, 1, 1):
        return "出生日期无效"
    if check_digit(value[:17]) != value[17]:
        return "校验位错误"
    return None


def normalise_id(value: str) -> str:
    return value.strip().replace(" ", "").upper()


def check_id_number(value: str, field: str = "id_number") -> str:
    v = normalise_id(value)
    problem = id_number_problem(v)
    if problem:
        raise ApiError(
            "invalid_id_number",
            field=field,
            detail=f"身份证号码无效：{problem}",
            detail_en="Invalid identity number",
        )
    return v


def normalise_phone(value: str) -> str:
    v = re.sub(r"[\s()（）]", "", value.strip())
    if v.startswith("+86"):
        v = v[3:]
    elif v.startswith("0086"):
        v = v[4:]
    return v


def phone_problem(value: str) -> str | None:
    if _MOBILE.match(value) or _LANDLINE.match(value):
        return None
    return "应为11位手机号或带区号的固定电话"


def check_phone(value: str, field: str = "phone") -> str:
    v = normalise_phone(value)
    problem = phone_problem(v)
    if problem:
        raise ApiError("invalid_phone", field=field, detail=f"电话号码格式无效：{problem}")
    return v


def birth_of(id_number: str) -> tuple[int, str]:
    """(birth year, gender M/F) read from a valid identity number."""
    return int(id_number[6:10]), "M" if int(id_number[16]) % 2 else "F"

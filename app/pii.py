"""Personal data (PIPL): stored once, masked in every response unless revealed on purpose."""

from __future__ import annotations


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

"""Password hashing (argon2id) and the password rules (等保 2.0: length and complexity)."""

from __future__ import annotations

import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import get_settings
from app.errors import ApiError, FieldError

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("wangge-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Constant-ish time: an unknown user still costs one argon2 verification."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def password_problems(password: str, username: str = "") -> list[FieldError]:
    s = get_settings()
    problems: list[FieldError] = []
    if len(password) < s.password_min_length:
        problems.append(
            FieldError(
                "password",
                "password_too_short",
                f"密码至少 {s.password_min_length} 位",
                f"At least {s.password_min_length} characters",
            )
        )
    classes = sum(
        any(c in group for c in password)
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    ) + any(not c.isalnum() for c in password)
    if classes < 3:
        problems.append(
            FieldError(
                "password",
                "password_too_simple",
                "密码须包含大写字母、小写字母、数字、符号中的至少三类",
                "Use at least three of: upper case, lower case, digits, symbols",
            )
        )
    if username and username.lower() in password.lower():
        problems.append(
            FieldError(
                "password",
                "password_contains_username",
                "密码不能包含用户名",
                "The password must not contain the user name",
            )
        )
    return problems


def check_password(password: str, username: str = "") -> None:
    problems = password_problems(password, username)
    if problems:
        raise ApiError(
            "weak_password",
            field="password",
            errors=problems,
            detail=problems[0].message,
            detail_en=problems[0].message_en,
        )

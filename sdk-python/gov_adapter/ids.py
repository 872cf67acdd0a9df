"""Identifier checks, each problem in Chinese (the same rules as the Rust sdk's ``ids``)."""

from __future__ import annotations

from typing import Optional

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(first17: str) -> Optional[str]:
    """The check character of a unified social credit code from its first 17 characters."""
    if len(first17) != 17 or any(c not in CREDIT_ALPHABET for c in first17):
        return None
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> Optional[tuple[str, str]]:
    """``(code, message)`` of what is wrong with a unified social credit code (GB 32100-2015),
    or ``None`` when it is well formed."""
    if len(value) != 18:
        return ("length", f"统一社会信用代码应为18位，实为{len(value)}位")
    bad = next((c for c in value if c not in CREDIT_ALPHABET), None)
    if bad is not None:
        return ("format", f"统一社会信用代码含有不允许的字符「{bad}」")
    if credit_code_check_char(value[:17]) != value[17]:
        return ("checksum", "统一社会信用代码校验位错误")
    return None

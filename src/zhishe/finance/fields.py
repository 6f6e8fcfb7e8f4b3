"""Checks of the fields the operator's priced offers share: ad slots, data plans and membership
plans all have a code and a Chinese name."""

from __future__ import annotations

from zhishe.core.errors import Invalid
from zhishe.core.i18n import T

__all__ = ["check_code_and_name"]


def check_code_and_name(code: str, name_zh: str) -> None:
    """Refuse a code that is not 1 to 64 letters, digits, ``-`` or ``_``, or an empty or over-long
    Chinese name, naming the field."""
    if not code or len(code) > 64 or not all(c.isalnum() or c in "-_" for c in code):
        raise Invalid(T("code must be 1 to 64 letters, digits, - or _"), detail={"field": "code"})
    if not name_zh.strip() or len(name_zh) > 200:
        raise Invalid(T("name_zh must have 1 to 200 characters"), detail={"field": "name_zh"})

"""Money in whole fen: rounding half to even on integers, checking amounts, reading yuan typed in
forms and showing fen as yuan. No floats anywhere."""

from __future__ import annotations

import re

from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.finance.ledger import MAX_FEN

__all__ = [
    "bps_of",
    "check_fen",
    "half_even",
    "parse_yuan",
    "share",
    "yuan",
    "yuan_label",
]

_YUAN = re.compile(r"(-?)(\d{1,10})(?:\.(\d{1,2}))?")


def half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even, in integers only (no floats)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def share(value: int, numerator: int, denominator: int) -> int:
    """``value × numerator / denominator`` rounded half to even, on integers only."""
    return half_even(value * numerator, denominator)


def bps_of(amount_fen: int, bps: int) -> int:
    """``amount_fen × bps / 10,000`` (a rate in basis points), rounded half to even."""
    return half_even(amount_fen * bps, 10_000)


def check_fen(value: object, *, field: str = "amount_fen", allow_zero: bool = False) -> int:
    """A whole, positive number of fen (a bool, a float or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(T("{field} must be a whole number of fen", field=field), detail={"field": field})
    if value < 0 or (value == 0 and not allow_zero) or value > MAX_FEN:
        raise Invalid(T("{field} must be more than zero", field=field), detail={"field": field})
    return value


def parse_yuan(
    text: object, *, field: str = "amount", allow_zero: bool = False, allow_negative: bool = False
) -> int:
    """An amount typed in yuan with at most two decimals (``"12.5"``, ``"1,200"``) as fen.

    Positive unless ``allow_zero`` / ``allow_negative`` say otherwise; ``Invalid`` names ``field``."""
    value = str(text if text is not None else "").strip().replace(",", "")
    found = _YUAN.fullmatch(value)
    if not found or (found.group(1) and not allow_negative):
        raise Invalid(
            T("{field} must be an amount in yuan such as 50 or 49.90", field=field), detail={"field": field}
        )
    fen = int(found.group(2)) * 100 + int((found.group(3) or "0").ljust(2, "0"))
    if fen == 0 and not allow_zero:
        raise Invalid(T("{field} must be more than zero", field=field), detail={"field": field})
    return -fen if found.group(1) else fen


def yuan(fen: int, *, grouped: bool = False) -> str:
    """``-123456`` fen as ``-1234.56`` (``-1,234.56`` when ``grouped``), exact."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{part:02d}" if grouped else f"{sign}{whole}.{part:02d}"


def yuan_label(fen: int | None) -> str:
    """An amount in fen shown to people, with the yuan sign: ``¥12.30``, ``-¥1,234.00``; None as
    ``¥0.00``."""
    value = int(fen or 0)
    sign = "-" if value < 0 else ""
    return f"{sign}¥{yuan(abs(value), grouped=True)}"

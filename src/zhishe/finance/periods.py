"""Days and months in the platform timezone: today's date, ``YYYY-MM`` months, their arithmetic
and the UTC instants where they begin and end."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from zhishe.core import clock
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T

__all__ = [
    "add_month",
    "local_day",
    "local_today",
    "month_bounds",
    "month_of",
    "months_between",
    "parse_month",
]

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def local_day(moment: datetime) -> date:
    """The date of ``moment`` in the platform timezone."""
    return moment.astimezone(get_settings().tz).date()


def local_today(at: datetime | None = None) -> date:
    """Today's date in the platform timezone (the date of ``at`` when given)."""
    return local_day(at or clock.now())


def month_of(moment: datetime) -> str:
    """``YYYY-MM`` of ``moment`` in the platform timezone."""
    return moment.astimezone(get_settings().tz).strftime("%Y-%m")


def parse_month(text: object, *, field: str = "month") -> str:
    """A ``YYYY-MM`` month, checked; Invalid naming ``field`` otherwise."""
    value = str(text or "").strip()
    found = _MONTH.fullmatch(value)
    if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2999:
        raise Invalid(
            T("{field} must be a month written YYYY-MM, not {value}", field=field, value=repr(value)[:40]),
            detail={"field": field},
        )
    return value


def add_month(month: str, n: int = 1) -> str:
    """The month ``n`` months after ``month`` (``n`` may be negative)."""
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(first: str, last: str, *, most: int = 120) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive (at most ``most``)."""
    months: list[str] = []
    month = first
    while month <= last and len(months) < most:
        months.append(month)
        month = add_month(month)
    return months


def month_bounds(first: str, last: str | None = None) -> tuple[datetime, datetime]:
    """The UTC instants where ``first`` starts and ``last`` (default ``first``) ends, local time."""
    tz = get_settings().tz
    end_month = add_month(last or first)
    start = datetime.combine(date(int(first[:4]), int(first[5:7]), 1), time(0), tzinfo=tz)
    end = datetime.combine(date(int(end_month[:4]), int(end_month[5:7]), 1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)

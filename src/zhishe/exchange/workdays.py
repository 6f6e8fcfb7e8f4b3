"""The working-day calendar that reply deadlines are counted on.

A day is a working day if it is Monday to Friday, unless the calendar says otherwise. The
calendar is China's statutory holidays and make-up working days (调休上班) as published by the
State Council for the current year (``SHIPPED``), overridden day by day by what an administrator
has entered (the ``exchange_holidays`` table): adding a holiday, removing a shipped one (by
entering that day as a working day), or adding a make-up working day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhishe.core import clock
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid, NotFound
from zhishe.exchange.models import Holiday

__all__ = [
    "SHIPPED",
    "CalendarDay",
    "add_working_days",
    "calendar_days",
    "is_working_day",
    "overrides",
    "remove_day",
    "reply_deadline",
    "set_day",
    "working_days_between",
]


def _span(first: date, last: date, name: str) -> dict[date, tuple[str, bool]]:
    return {first + timedelta(days=i): (name, False) for i in range((last - first).days + 1)}


#: 国务院办公厅关于2026年部分节假日安排的通知: days off (False) and make-up working days (True).
SHIPPED: Mapping[date, tuple[str, bool]] = {
    **_span(date(2026, 1, 1), date(2026, 1, 3), "元旦"),
    date(2026, 1, 4): ("元旦调休上班", True),
    **_span(date(2026, 2, 15), date(2026, 2, 23), "春节"),
    date(2026, 2, 14): ("春节调休上班", True),
    date(2026, 2, 28): ("春节调休上班", True),
    **_span(date(2026, 4, 4), date(2026, 4, 6), "清明节"),
    **_span(date(2026, 5, 1), date(2026, 5, 5), "劳动节"),
    date(2026, 5, 9): ("劳动节调休上班", True),
    **_span(date(2026, 6, 19), date(2026, 6, 21), "端午节"),
    **_span(date(2026, 9, 25), date(2026, 9, 27), "中秋节"),
    **_span(date(2026, 10, 1), date(2026, 10, 7), "国庆节"),
    date(2026, 9, 20): ("国庆节调休上班", True),
    date(2026, 10, 10): ("国庆节调休上班", True),
}


@dataclass(frozen=True, slots=True)
class CalendarDay:
    """A day that is not an ordinary weekday or weekend day, and where the rule comes from."""

    day: date
    name: str
    is_workday: bool
    source: str  #: shipped | edited


def overrides(session: Session) -> dict[date, tuple[str, bool]]:
    """The calendar's special days: shipped, then overridden by what administrators entered."""
    days = dict(SHIPPED)
    for row in session.scalars(select(Holiday)):
        days[row.day] = (row.name, row.is_workday)
    return days


def is_working_day(day: date, overrides: Mapping[date, tuple[str, bool]]) -> bool:
    """Whether ``day`` is worked, by the calendar or else by the weekday."""
    if day in overrides:
        return overrides[day][1]
    return day.weekday() < 5


def add_working_days(start: date, count: int, overrides: Mapping[date, tuple[str, bool]]) -> date:
    """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
    if count < 0:
        raise Invalid("the number of working days cannot be negative", detail={"count": count})
    day, left = start, count
    while left:
        day += timedelta(days=1)
        if is_working_day(day, overrides):
            left -= 1
    return day


def working_days_between(first: date, last: date, overrides: Mapping[date, tuple[str, bool]]) -> int:
    """Working days after ``first`` up to and including ``last`` (negative when ``last`` is earlier)."""
    if last < first:
        return -working_days_between(last, first, overrides)
    return sum(
        1 for i in range(1, (last - first).days + 1) if is_working_day(first + timedelta(days=i), overrides)
    )


def reply_deadline(session: Session, submitted: datetime, days: int | None = None) -> datetime:
    """The end of the ``days``-th working day (default: the configured reply days) after the day of
    ``submitted`` in the platform timezone, as an aware datetime (the first instant after it)."""
    settings = get_settings()
    zone = settings.tz
    local_day = submitted.astimezone(zone).date()
    last = add_working_days(
        local_day, settings.exchange_reply_days if days is None else days, overrides(session)
    )
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)


def calendar_days(session: Session, year: int | None = None) -> list[CalendarDay]:
    """The calendar's special days of ``year`` (default: this year), shipped and edited."""
    year = year or clock.now().astimezone(get_settings().tz).year
    edited = {row.day: row for row in session.scalars(select(Holiday))}
    days: dict[date, CalendarDay] = {
        d: CalendarDay(d, name, workday, "shipped")
        for d, (name, workday) in SHIPPED.items()
        if d.year == year
    }
    for d, row in edited.items():
        if d.year == year:
            days[d] = CalendarDay(d, row.name, row.is_workday, "edited")
    return [days[d] for d in sorted(days)]


def set_day(session: Session, *, actor: Actor, day: date, name: str, is_workday: bool) -> CalendarDay:
    """Make ``day`` a holiday or a working day (data bureau administrators only)."""
    authorize(actor, "exchange.calendar", what="the working-day calendar")
    name = name.strip()[:100]
    row = session.scalar(select(Holiday).where(Holiday.day == day))
    if row is None:
        row = Holiday(day=day, name=name, is_workday=is_workday)
        session.add(row)
    else:
        row.name, row.is_workday = name, is_workday
    session.flush()
    record(
        session=session,
        actor=actor,
        action="exchange.calendar.set",
        object_type="calendar_day",
        object_id=day.isoformat(),
        detail={"name": name, "is_workday": is_workday},
    )
    return CalendarDay(day, name, is_workday, "edited")


def remove_day(session: Session, *, actor: Actor, day: date) -> None:
    """Drop an edit of ``day``, so the shipped calendar (or the weekday) applies again."""
    authorize(actor, "exchange.calendar", what="the working-day calendar")
    row = session.scalar(select(Holiday).where(Holiday.day == day))
    if row is None:
        raise NotFound(f"the calendar has no edit for {day.isoformat()}", detail={"day": day.isoformat()})
    session.delete(row)
    record(
        session=session,
        actor=actor,
        action="exchange.calendar.remove",
        object_type="calendar_day",
        object_id=day.isoformat(),
    )

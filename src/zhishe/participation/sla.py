"""SLA deadlines of work orders, counted on the working-day calendar.

A category's SLA is ``sla_amount`` working hours or working days (``sla_unit``):

- **hours** are counted only inside the working periods (``settings.work_hours``, e.g.
  ``09:00-12:00,13:30-17:30``) of working days; a report filed outside them starts at the next period.
- **days** end with the ``amount``-th working day after the local day of submission: the deadline is
  the first instant after that day (midnight, platform time), as for exchange reply deadlines.

Working days come from ``zhishe.exchange.workdays`` (China's statutory holidays and make-up working
days as shipped, overridden by the administrators' edits). Local days are in ``settings.tz``; all
arithmetic is on aware UTC instants, so a zone with daylight saving time is handled correctly.

While an order waits (parts, a third party, the weather) its SLA clock stops: ``extend`` moves the
deadline later by the working time spent waiting.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.exchange import workdays

__all__ = [
    "UNITS",
    "WorkCalendar",
    "deadline",
    "extend",
    "parse_periods",
    "work_periods",
    "working_seconds",
]

#: The units an SLA can be counted in.
UNITS = ("hours", "days")
#: How far ahead the calendar is searched for working time before giving up (a misconfiguration).
_HORIZON_DAYS = 3660


def _parse_clock(text: str, setting: str) -> time:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise Invalid(
            f"{setting}: {text.strip()!r} is not a time of day such as 09:00", detail={"setting": setting}
        )
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return time.max
    if h > 23 or m > 59:
        raise Invalid(f"{setting}: {text.strip()!r} is not a time of day", detail={"setting": setting})
    return time(h, m)


def parse_periods(text: str, setting: str = "work_hours") -> list[tuple[time, time]]:
    """Working periods from ``"09:00-12:00,13:30-17:30"``: ascending, non-overlapping, non-empty."""
    periods: list[tuple[time, time]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        first, sep, last = part.partition("-")
        if not sep:
            raise Invalid(
                f"{setting}: {part.strip()!r} is not a range such as 09:00-12:00", detail={"setting": setting}
            )
        start, end = _parse_clock(first, setting), _parse_clock(last, setting)
        if end <= start:
            raise Invalid(f"{setting}: {part.strip()!r} ends before it starts", detail={"setting": setting})
        if periods and start < periods[-1][1]:
            raise Invalid(
                f"{setting}: {part.strip()!r} overlaps or precedes the range before it",
                detail={"setting": setting},
            )
        periods.append((start, end))
    if not periods:
        raise Invalid(f"{setting}: no working hours are configured", detail={"setting": setting})
    return periods


def work_periods() -> list[tuple[time, time]]:
    """The working periods of a working day, from ``settings.work_hours`` (Invalid if malformed)."""
    return parse_periods(get_settings().work_hours)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(f"{field} must carry a timezone offset", detail={"field": field})
    return value.astimezone(UTC)


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise Invalid(
            f"the SLA unit must be one of {', '.join(UNITS)}, not {unit!r}", detail={"field": "sla_unit"}
        )


class WorkCalendar:
    """The working-time calendar: working days, working periods and the platform timezone.

    Load it once (``WorkCalendar.load(session)``) to compute many deadlines. Working time is kept as
    a running total: each day's periods (as POSIX timestamps) and the working seconds before the day
    are computed once, so the working time between two instants costs two look-ups.
    """

    def __init__(
        self,
        overrides: dict[date, tuple[str, bool]],
        periods: list[tuple[time, time]],
        zone: ZoneInfo,
    ) -> None:
        self.overrides = overrides
        self.periods = periods
        self.zone = zone
        self._spans: dict[date, tuple[tuple[float, float], ...]] = {}
        self._totals: dict[date, float] = {}
        #: Working seconds from the start of the first day looked at to the start of each day.
        self._before: dict[date, float] = {}
        self._first: date | None = None
        self._last: date | None = None
        #: Working seconds of an ordinary working day (a day without a clock change).
        self.day_seconds = sum(
            (datetime.combine(date(2000, 1, 3), b) - datetime.combine(date(2000, 1, 3), a)).total_seconds()
            for a, b in periods
        )

    @classmethod
    def load(cls, session: Session) -> WorkCalendar:
        """The calendar as configured now (settings and the holiday table)."""
        return cls(workdays.overrides(session), work_periods(), get_settings().tz)

    # --- days and periods -------------------------------------------------------------------------

    def local_day(self, instant: datetime) -> date:
        """The platform-time calendar day of an instant."""
        return instant.astimezone(self.zone).date()

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is worked."""
        return workdays.is_working_day(day, self.overrides)

    def _day(self, day: date) -> tuple[tuple[float, float], ...]:
        """The working periods of ``day`` as POSIX timestamps (none on a day off)."""
        found = self._spans.get(day)
        if found is None:
            spans: list[tuple[float, float]] = []
            if self.is_working_day(day):
                for a, b in self.periods:
                    start = datetime.combine(day, a, tzinfo=self.zone).timestamp()
                    end = datetime.combine(day, b, tzinfo=self.zone).timestamp()
                    if end > start:
                        spans.append((start, end))
            found = self._spans[day] = tuple(spans)
            self._totals[day] = sum(end - start for start, end in found)
        return found

    def _total(self, day: date) -> float:
        self._day(day)
        return self._totals[day]

    def _start_of(self, day: date) -> float:
        """Working seconds from the reference day's start to ``day``'s start (negative before it)."""
        found = self._before.get(day)
        if found is not None:
            return found
        if self._first is None or self._last is None:
            self._first = self._last = day
            self._before[day] = 0.0
            return 0.0
        one = timedelta(days=1)
        while day > self._last:
            self._before[self._last + one] = self._before[self._last] + self._total(self._last)
            self._last += one
        while day < self._first:
            self._before[self._first - one] = self._before[self._first] - self._total(self._first - one)
            self._first -= one
        return self._before[day]

    def _position(self, instant: datetime) -> tuple[date, float]:
        """The local day of ``instant`` and the working seconds up to it on the running total."""
        day = self.local_day(instant)
        stamp = instant.timestamp()
        position = self._start_of(day)
        for a, b in self._day(day):
            if stamp >= b:
                position += b - a
            else:
                if stamp > a:
                    position += stamp - a
                break
        return day, position

    def day_periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working periods of ``day`` as UTC instants (none on a day off)."""
        return tuple(
            (datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)) for a, b in self._day(day)
        )

    def end_of_day(self, day: date) -> datetime:
        """The first instant after ``day`` (platform time), in UTC."""
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)

    # --- arithmetic -------------------------------------------------------------------------------

    def advance(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant at which ``seconds`` of working time have passed since ``start``.

        Zero seconds is ``start`` itself. A period's end is returned as is when the time runs out
        exactly there (12:00 rather than 13:30).
        """
        start = _aware(start, "start")
        if seconds <= 0:
            return start
        day, position = self._position(start)
        target = position + seconds
        one = timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            before = self._start_of(day)
            if before + self._total(day) >= target:
                for a, b in self._day(day):
                    if before + (b - a) >= target:
                        return datetime.fromtimestamp(a + (target - before), UTC)
                    before += b - a
            day += one
        raise Invalid(
            f"no working time found within {_HORIZON_DAYS} days: check the calendar and work_hours",
            detail={"setting": "work_hours"},
        )

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time between two instants, in seconds (0 when ``end`` is not after ``start``)."""
        start, end = _aware(start, "start"), _aware(end, "end")
        if end <= start:
            return 0.0
        return self._position(end)[1] - self._position(start)[1]

    def deadline(self, start: datetime, amount: int, unit: str) -> datetime:
        """The deadline of an SLA of ``amount`` working ``unit`` counted from ``start``."""
        _check_unit(unit)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise Invalid(
                f"the SLA amount must be a whole number of at least 0, not {amount!r}",
                detail={"field": "sla_amount"},
            )
        start = _aware(start, "start")
        if unit == "hours":
            return self.advance(start, amount * 3600)
        last = workdays.add_working_days(self.local_day(start), amount, self.overrides)
        return self.end_of_day(last)

    def extend(self, expected_at: datetime, paused_at: datetime, resumed_at: datetime, unit: str) -> datetime:
        """``expected_at`` moved later by the working time spent waiting from ``paused_at`` to ``resumed_at``."""
        _check_unit(unit)
        expected_at = _aware(expected_at, "expected_at")
        waited = self.working_seconds(_aware(paused_at, "paused_at"), _aware(resumed_at, "resumed_at"))
        if waited <= 0:
            return expected_at
        if unit == "hours":
            return self.advance(expected_at, waited)
        days = int(waited / self.day_seconds + 0.5) if self.day_seconds else 0
        if days <= 0:
            return expected_at
        local = expected_at.astimezone(self.zone)
        if local.time() == time(0):  # the usual case: the first instant after the last day
            last = workdays.add_working_days(local.date() - timedelta(days=1), days, self.overrides)
            return self.end_of_day(last)
        moved = workdays.add_working_days(local.date(), days, self.overrides)
        return datetime.combine(moved, local.time(), tzinfo=self.zone).astimezone(UTC)


def deadline(session: Session, start: datetime, amount: int, unit: str) -> datetime:
    """The SLA deadline (UTC) of ``amount`` working hours or days from ``start``.

    Hours count only inside the working periods of working days (a start outside them begins at the
    next period); days end at the first instant after the ``amount``-th working day following the
    local day of ``start``.
    """
    return WorkCalendar.load(session).deadline(start, amount, unit)


def working_seconds(session: Session, start: datetime, end: datetime) -> float:
    """Working time between two instants in seconds (0 if ``end`` is not after ``start``)."""
    return WorkCalendar.load(session).working_seconds(start, end)


def extend(
    session: Session, expected_at: datetime, paused_at: datetime, resumed_at: datetime, unit: str
) -> datetime:
    """The deadline moved later by the working time an order spent waiting.

    For an SLA in hours, by the working seconds of the wait. For an SLA in days, by whole working
    days: the wait's working time divided by a working day's, rounded half up, so that a wait over a
    weekend (or a short wait inside a day) moves nothing and a wait over two working days moves the
    deadline two working days.
    """
    return WorkCalendar.load(session).extend(expected_at, paused_at, resumed_at, unit)

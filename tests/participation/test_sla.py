"""SLA arithmetic on the working-day calendar: working hours and working days across lunch breaks,
evenings, weekends and China's 2026 National Day (with its make-up Saturday), and the SLA clock
stopped while an order waits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from zhishe.core.auth import system_actor
from zhishe.core.config import reset_settings
from zhishe.core.errors import Invalid
from zhishe.exchange import workdays
from zhishe.participation import sla

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = 3600


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    """A Shanghai wall-clock time of 2026."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def calendar() -> sla.WorkCalendar:
    """The shipped calendar with the default working hours, without a database."""
    return sla.WorkCalendar(dict(workdays.SHIPPED), sla.parse_periods("09:00-12:00,13:30-17:30"), SHANGHAI)


# --- working hours ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(at(11, 2, 10), 1, at(11, 2, 11), id="inside-a-morning"),
        pytest.param(at(11, 2, 11), 2, at(11, 2, 14, 30), id="across-the-lunch-break"),
        pytest.param(at(11, 2, 9), 3, at(11, 2, 12), id="ends-exactly-at-lunch"),
        pytest.param(at(11, 2, 16, 30), 2, at(11, 3, 10), id="across-an-evening"),
        pytest.param(at(11, 6, 16, 30), 2, at(11, 9, 10), id="across-a-weekend"),
        pytest.param(at(9, 30, 16, 30), 10, at(10, 9, 11), id="across-national-day"),
        pytest.param(at(9, 30, 16, 30), 16, at(10, 10, 10), id="into-the-make-up-saturday"),
        pytest.param(at(11, 2, 7), 1, at(11, 2, 10), id="start-before-opening"),
        pytest.param(at(11, 2, 12, 30), 1, at(11, 2, 14, 30), id="start-in-the-lunch-break"),
        pytest.param(at(11, 7, 20), 1, at(11, 9, 10), id="start-on-a-saturday-evening"),
        pytest.param(at(10, 3, 11), 1, at(10, 8, 10), id="start-on-a-holiday"),
    ],
)
def test_hours_sla_counts_only_working_hours_of_working_days(
    db: Session, start: datetime, hours: int, expected: datetime
) -> None:
    due = sla.deadline(db, start, hours, "hours")
    assert due == expected
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0)


def test_the_make_up_saturday_is_worked_and_national_day_is_not(db: Session) -> None:
    # Seven working hours fill one day: 30 Sept (1 h), then 8 and 9 Oct, then the make-up Saturday.
    assert sla.working_seconds(db, at(10, 1), at(10, 8)) == 0
    assert sla.working_seconds(db, at(10, 10), at(10, 11)) == 7 * HOURS
    assert sla.working_seconds(db, at(10, 11), at(10, 12)) == 0  # an ordinary Sunday
    assert sla.deadline(db, at(10, 9, 17), 1, "hours") == at(10, 10, 9, 30)


def test_working_seconds_between_two_instants(db: Session) -> None:
    assert sla.working_seconds(db, at(11, 2, 11), at(11, 2, 14, 30)) == 2 * HOURS
    assert sla.working_seconds(db, at(11, 6, 17), at(11, 9, 9, 30)) == 1 * HOURS
    assert sla.working_seconds(db, at(11, 2, 0), at(11, 9, 0)) == 5 * 7 * HOURS
    assert sla.working_seconds(db, at(11, 2, 14), at(11, 2, 10)) == 0


def test_an_hours_sla_of_zero_is_due_at_once(db: Session) -> None:
    assert sla.deadline(db, at(11, 7, 20), 0, "hours") == at(11, 7, 20)


# --- working days -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        pytest.param(at(11, 2, 10), 3, at(11, 6), id="mid-week"),
        pytest.param(at(11, 6, 15), 1, at(11, 10), id="across-a-weekend"),
        pytest.param(at(11, 7, 11), 1, at(11, 10), id="filed-on-a-saturday"),
        pytest.param(at(11, 6, 23, 30), 1, at(11, 10), id="late-friday-is-still-friday"),
        pytest.param(at(9, 30, 10), 3, at(10, 11), id="across-national-day-to-the-make-up-saturday"),
        pytest.param(at(10, 3, 11), 1, at(10, 9), id="filed-during-national-day"),
    ],
)
def test_days_sla_ends_after_the_nth_working_day(
    db: Session, start: datetime, days: int, expected: datetime
) -> None:
    due = sla.deadline(db, start, days, "days")
    assert due == expected
    assert due == workdays.reply_deadline(db, start, days)


def test_days_follow_the_local_day_not_the_utc_day(db: Session) -> None:
    # 01:00 on Tuesday in Shanghai is still Monday in UTC; the local day counts.
    start = at(11, 3, 1)
    assert start.astimezone(UTC).date() == date(2026, 11, 2)
    assert sla.deadline(db, start, 1, "days") == at(11, 5)


def test_an_administrators_holiday_moves_the_deadline(db: Session) -> None:
    before = sla.deadline(db, at(11, 6, 15), 1, "days")
    workdays.set_day(db, actor=system_actor("test"), day=date(2026, 11, 9), name="停电", is_workday=False)
    assert before == at(11, 10)
    assert sla.deadline(db, at(11, 6, 15), 1, "days") == at(11, 11)
    assert sla.deadline(db, at(11, 6, 16, 30), 2, "hours") == at(11, 10, 10)


# --- bad input ----------------------------------------------------------------------------------


def test_unknown_unit_negative_amount_and_naive_times_are_refused(db: Session) -> None:
    with pytest.raises(Invalid) as unit:
        sla.deadline(db, at(11, 2, 10), 3, "weeks")
    assert unit.value.detail == {"field": "sla_unit"}
    with pytest.raises(Invalid) as amount:
        sla.deadline(db, at(11, 2, 10), -1, "days")
    assert amount.value.detail == {"field": "sla_amount"}
    with pytest.raises(Invalid) as naive:
        sla.deadline(db, datetime(2026, 11, 2, 10), 3, "days")
    assert naive.value.detail == {"field": "start"}


@pytest.mark.parametrize(
    "text", ["", "9-12", "09:00", "09:00-08:00", "09:00-12:00,11:00-13:00", "09:00-25:00", "nine-ten"]
)
def test_malformed_working_hours_are_refused(text: str) -> None:
    with pytest.raises(Invalid) as error:
        sla.parse_periods(text)
    assert error.value.detail == {"setting": "work_hours"}


def test_work_periods_come_from_the_setting(monkeypatch: pytest.MonkeyPatch, db: Session) -> None:
    assert sla.work_periods() == [(time(9), time(12)), (time(13, 30), time(17, 30))]
    monkeypatch.setenv("ZHISHE_WORK_HOURS", "08:30-12:00, 14:00-18:00")
    reset_settings()
    try:
        assert sla.work_periods() == [(time(8, 30), time(12)), (time(14), time(18))]
        assert sla.deadline(db, at(11, 2, 11), 2, "hours") == at(11, 2, 15)
        monkeypatch.setenv("ZHISHE_WORK_HOURS", "08:30-")
        reset_settings()
        with pytest.raises(Invalid):
            sla.work_periods()
    finally:
        monkeypatch.undo()
        reset_settings()


def test_a_whole_day_period_counts_a_clock_change_day_as_it_is() -> None:
    # New York springs forward on Sunday 8 March 2026: that day has 23 hours.
    zone = ZoneInfo("America/New_York")
    overrides = {date(2026, 3, 8): ("worked Sunday", True)}
    cal = sla.WorkCalendar(overrides, sla.parse_periods("00:00-24:00"), zone)
    start = datetime(2026, 3, 8, tzinfo=zone)
    end = datetime(2026, 3, 9, tzinfo=zone)
    assert cal.working_seconds(start, end) == pytest.approx(23 * HOURS, abs=0.01)
    assert cal.advance(start, 3 * HOURS) == datetime(2026, 3, 8, 4, tzinfo=zone)


# --- waiting: the clock stops -------------------------------------------------------------------


def test_a_wait_inside_a_day_moves_an_hours_deadline_by_the_working_time_waited(db: Session) -> None:
    expected = at(11, 2, 15)
    assert sla.extend(db, expected, at(11, 2, 10), at(11, 2, 11), "hours") == at(11, 2, 16)
    # 11:30 to 14:00 holds one working hour (the lunch break is not counted).
    assert sla.extend(db, expected, at(11, 2, 11, 30), at(11, 2, 14), "hours") == at(11, 2, 16)


def test_a_wait_inside_a_day_moves_a_days_deadline_only_from_half_a_day(db: Session) -> None:
    expected = at(11, 6)  # the end of Thursday 5 November
    assert sla.extend(db, expected, at(11, 2, 10), at(11, 2, 12), "days") == expected
    assert sla.extend(db, expected, at(11, 2, 9), at(11, 2, 15), "days") == at(11, 7)


def test_a_wait_over_a_weekend_moves_a_days_deadline_nothing(db: Session) -> None:
    expected = at(11, 11)
    assert sla.extend(db, expected, at(11, 6, 17, 30), at(11, 9, 9), "days") == expected
    assert sla.extend(db, expected, at(11, 7, 10), at(11, 8, 20), "days") == expected
    assert sla.extend(db, expected, at(11, 7, 10), at(11, 8, 20), "hours") == expected
    # Friday 17:00 to Monday 10:00 holds an hour and a half of working time.
    assert sla.extend(db, at(11, 9, 12), at(11, 6, 17), at(11, 9, 10), "hours") == at(11, 9, 15)


def test_a_wait_over_two_working_days_moves_a_days_deadline_two_working_days(db: Session) -> None:
    # Due at the end of Friday 6 Nov; waited Monday 10:00 to Wednesday 10:00: due the end of Tuesday 10 Nov.
    assert sla.extend(db, at(11, 7), at(11, 2, 10), at(11, 4, 10), "days") == at(11, 11)
    # Across National Day: the holiday week is not counted, the make-up Saturday is.
    assert sla.extend(db, at(10, 9), at(9, 29, 9), at(9, 30, 17, 30), "days") == at(10, 11)


def test_a_wait_that_ended_before_it_began_moves_nothing(db: Session) -> None:
    assert sla.extend(db, at(11, 6), at(11, 2, 12), at(11, 2, 10), "hours") == at(11, 6)


# --- properties ---------------------------------------------------------------------------------

_CAL = calendar()
_WORKING_MINUTES = [(9 * 60, 12 * 60), (13 * 60 + 30, 17 * 60 + 30)]


@st.composite
def working_instants(draw: st.DrawFn) -> datetime:
    """An instant inside the working time of a working day of 2026."""
    day = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 364)))
    assume(_CAL.is_working_day(day))
    first, last = _WORKING_MINUTES[draw(st.integers(0, 1))]
    minute = draw(st.integers(first, last - 1))
    second = draw(st.integers(0, 59))
    return datetime.combine(day, time(minute // 60, minute % 60, second), tzinfo=SHANGHAI)


@settings(max_examples=300, deadline=None)
@given(start=working_instants(), a=st.integers(0, 120), b=st.integers(0, 120))
def test_hours_deadlines_compose(start: datetime, a: int, b: int) -> None:
    assert _CAL.deadline(start, a + b, "hours") == _CAL.deadline(_CAL.deadline(start, a, "hours"), b, "hours")


@settings(max_examples=300, deadline=None)
@given(start=working_instants(), a=st.integers(0, 200))
def test_deadlines_grow_with_the_amount(start: datetime, a: int) -> None:
    hours = _CAL.deadline(start, a, "hours")
    assert _CAL.deadline(start, a + 1, "hours") > hours
    assert _CAL.working_seconds(start, hours) == pytest.approx(a * HOURS)
    assert _CAL.deadline(start, a + 1, "days") > _CAL.deadline(start, a, "days")
    assert _CAL.is_working_day(_CAL.local_day(_CAL.deadline(start, a + 1, "days") - timedelta(seconds=1)))

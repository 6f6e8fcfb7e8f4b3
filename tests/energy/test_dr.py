"""Demand-response baselines (high X of Y, forecast) and delivered reductions, on hand numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from zhishe.core.errors import Invalid
from zhishe.energy.dr import CAPPED, MESSAGES, delivered_reduction, forecast_baseline, high_x_of_y

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENT = date(2026, 3, 19)  # a Thursday
WINDOW = (time(14), time(16))


def history(
    windows: dict[date, tuple[float, float]], *, pre: float = 2.0, other: float = 1.0
) -> tuple[np.ndarray, list[date]]:
    """Hourly demand (kW) for 1–19 March: ``other`` kW all day, ``pre`` kW at 12:00 and 13:00, and
    the given demand at 14:00 and 15:00 (1 kW where not given)."""
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(19)]
    loads = np.full((len(days), 24), other)
    loads[:, 12:14] = pre
    for day, (a, b) in windows.items():
        loads[days.index(day), 14:16] = (a, b)
    return loads, days


WINDOWS = {
    date(2026, 3, 18): (6.0, 4.0),  # Wednesday: 10 kWh in the window
    date(2026, 3, 17): (2.0, 4.0),  # Tuesday: 6
    date(2026, 3, 16): (3.0, 5.0),  # Monday: 8
    date(2026, 3, 13): (10.0, 10.0),  # the Friday before: 20
    date(2026, 3, 14): (50.0, 50.0),  # a Saturday: never similar to a Thursday
}


def test_high_2_of_3_averages_the_two_highest_of_the_last_three_weekdays() -> None:
    loads, days = history(WINDOWS)
    baseline = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=2, y=3)
    assert baseline.kw.tolist() == [4.5, 4.5]  # 18 March and 16 March
    assert baseline.days_used == (date(2026, 3, 16), date(2026, 3, 18))
    assert baseline.start == datetime(2026, 3, 19, 6, tzinfo=UTC)
    assert baseline.method == "average of the highest 2 of the last 3 similar weekdays"


def test_x_equal_to_y_is_the_plain_average_of_the_last_similar_days() -> None:
    loads, days = history(WINDOWS)
    baseline = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=3, y=3)
    assert baseline.kw.tolist() == pytest.approx([11 / 3, 13 / 3])


def test_days_with_earlier_events_outages_or_missing_data_are_not_similar() -> None:
    loads, days = history(WINDOWS)
    after_event = high_x_of_y(
        loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, event_days={date(2026, 3, 18)}
    )
    assert after_event.days_used == (date(2026, 3, 13), date(2026, 3, 16))
    assert after_event.kw.tolist() == [6.5, 7.5]
    loads[days.index(date(2026, 3, 16)), 15] = np.nan
    gaps = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, outage_days={date(2026, 3, 18)})
    # Similar now: 17, 13 and 12 March (6, 20 and 2 kWh in the window).
    assert gaps.days_used == (date(2026, 3, 13), date(2026, 3, 17))
    assert gaps.kw.tolist() == [6.0, 7.0]


def test_a_weekend_event_uses_weekend_days_and_holidays() -> None:
    loads, days = history(WINDOWS)
    holiday = date(2026, 3, 11)
    loads[days.index(holiday), 14:16] = (7.0, 7.0)
    baseline = high_x_of_y(
        loads, days, event_day=date(2026, 3, 15), window=WINDOW, x=2, y=4, holidays={holiday}
    )
    # Similar: 14, 11 (holiday), 8 and 7 March; the highest are 14 March (100) and 11 March (14).
    assert baseline.days_used == (holiday, date(2026, 3, 14))
    assert baseline.kw.tolist() == [28.5, 28.5]
    assert baseline.method == "average of the highest 2 of the last 4 similar weekend days and holidays"


def test_too_few_similar_days_is_refused_saying_how_many_were_found() -> None:
    loads, days = history(WINDOWS)
    with pytest.raises(
        Invalid, match=r"only 13 similar weekdays .* in the 45 days before 2026-03-19: 14 are needed"
    ):
        high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=10, y=14)
    with pytest.raises(Invalid, match="x must be between 1 and y"):
        high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=4, y=3)


def test_an_additive_adjustment_shifts_the_baseline_by_the_same_day_difference() -> None:
    loads, days = history(WINDOWS)
    loads[days.index(EVENT), 12:14] = 3.0  # 1 kW above the baseline days in the two hours before
    baseline = high_x_of_y(
        loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, adjustment="additive", cap=None
    )
    assert baseline.kw.tolist() == [5.5, 5.5]
    assert (baseline.adjustment, baseline.capped) == (1.0, False)
    assert baseline.method == (
        "average of the highest 2 of the last 3 similar weekdays, "
        "with a same-day additive adjustment from the 2 hours before the event"
    )


def test_the_cap_holds_an_adjustment_and_says_so() -> None:
    loads, days = history(WINDOWS)
    loads[days.index(EVENT), 12:14] = 3.0
    additive = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, adjustment="additive")
    assert additive.kw.tolist() == pytest.approx([4.9, 4.9])  # +1 kW held at 20 % of 2 kW
    scaled = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, adjustment="multiplicative")
    assert scaled.kw.tolist() == pytest.approx([5.4, 5.4])  # ×1.5 held at ×1.2
    assert scaled.capped and scaled.adjustment == pytest.approx(1.2)
    assert scaled.method == (
        "average of the highest 2 of the last 3 similar weekdays, with a same-day multiplicative adjustment "
        "from the 2 hours before the event, capped at ±20 %, the adjustment was held at the cap (×1.200 instead of ×1.500)"
    )
    assert scaled.method_parts[-1][0] == CAPPED
    loads[days.index(EVENT), 12:14] = 1.0  # half the usual: held at ×0.8
    lower = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, adjustment="multiplicative")
    assert lower.kw.tolist() == pytest.approx([3.6, 3.6])
    wider = high_x_of_y(
        loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, adjustment="multiplicative", cap=0.6
    )
    assert wider.kw.tolist() == pytest.approx([2.25, 2.25]) and not wider.capped


def test_the_adjustment_hours_can_end_before_the_event() -> None:
    loads, days = history(WINDOWS)
    loads[:, 11] = 2.0
    loads[days.index(EVENT), 11:13] = 2.2  # 11:00 and 12:00; 13:00 (raised on purpose) is skipped
    loads[days.index(EVENT), 13] = 9.0
    baseline = high_x_of_y(
        loads, days, event_day=EVENT, window=WINDOW, x=2, y=3, adjustment="additive", gap_minutes=60
    )
    assert baseline.kw.tolist() == pytest.approx([4.7, 4.7])
    assert baseline.method.endswith("from the 2 hours ending 60 min before the event")
    with pytest.raises(Invalid, match=r"needs 2.0 hours before 01:00"):
        high_x_of_y(loads, days, event_day=EVENT, window=(time(1), time(2)), x=2, y=3, adjustment="additive")


def test_a_forecast_can_be_the_baseline_with_the_same_adjustment() -> None:
    start = datetime(2026, 3, 19, 14, tzinfo=SHANGHAI)
    baseline = forecast_baseline(
        [5.0, 5.0, 5.0, 5.0],
        start=start,
        adjustment="additive",
        actual_before=[2.0, 2.0],
        forecast_before=[2.5, 2.5],
    )
    assert baseline.kw.tolist() == [4.5] * 4
    assert baseline.end == start + timedelta(hours=1)
    assert baseline.method == (
        "the forecast of the site's demand (day-ahead), with a same-day additive adjustment from the 0.5 hours before the event"
    )
    with pytest.raises(Invalid, match="needs actual_before and forecast_before"):
        forecast_baseline([5.0], start=start, adjustment="multiplicative")


def test_the_delivered_reduction_is_baseline_minus_actual_in_kw_and_kwh() -> None:
    loads, days = history(WINDOWS)
    baseline = high_x_of_y(loads, days, event_day=EVENT, window=WINDOW, x=2, y=3)
    reduction = delivered_reduction(baseline, [2.0, 5.0])
    assert reduction.kw.tolist() == [2.5, -0.5]  # the second hour used more than its baseline
    assert reduction.kwh.tolist() == [2.5, -0.5]
    assert (reduction.total_kwh, reduction.mean_kw, reduction.baseline_kwh) == (2.0, 1.0, 9.0)
    assert reduction.method == baseline.method
    quarter = forecast_baseline([4.0] * 4, start=datetime(2026, 3, 19, 6, tzinfo=UTC))
    assert delivered_reduction(quarter, [2.0] * 4).total_kwh == 2.0  # 2 kW for an hour
    with pytest.raises(Invalid, match="actual has 3 slots but the baseline has 4"):
        delivered_reduction(quarter, [2.0] * 3)


def test_bad_baseline_input_is_refused() -> None:
    loads, days = history(WINDOWS)
    with pytest.raises(Invalid, match="one row per day"):
        high_x_of_y(loads[:-1], days, event_day=EVENT, window=WINDOW)
    with pytest.raises(Invalid, match="not on 60-minute slots"):
        high_x_of_y(loads, days, event_day=EVENT, window=(time(14, 30), time(16)), x=2, y=3)
    with pytest.raises(Invalid, match="ends before it starts"):
        high_x_of_y(loads, days, event_day=EVENT, window=(time(16), time(14)), x=2, y=3)


def test_every_method_template_is_listed_once() -> None:
    assert len(MESSAGES) == len(set(MESSAGES)) == 8

"""Detectors: leaks, use outside the forecast interval, counter corrections and inactivity, on hand
numbers and on a generated household (seeded) with and without injected faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from zhishe.core.errors import Invalid
from zhishe.energy.detect import (
    LEAK_ALL_DAY,
    LEAK_NIGHT,
    MESSAGES,
    USE_ABOVE,
    USE_BELOW,
    Alert,
    abnormal_use,
    clock_text,
    counter_alerts,
    water_leak,
)
from zhishe.energy.inactivity import (
    MESSAGES as INACTIVITY_MESSAGES,
)
from zhishe.energy.inactivity import (
    MOTION_MORNING,
    MOTION_PAUSE,
    Activity,
    check_inactivity,
    inactivity,
    learn_routine,
)
from zhishe.energy.tariff import day_type
from zhishe.iot.counters import RESET, bucket_energy, deltas

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUARTER = timedelta(minutes=15)


def at(day: date, minutes: float) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC) + timedelta(minutes=minutes)


# --- a generated household -----------------------------------------------------------------------


@dataclass
class Day:
    """One day of a resident living alone, in minutes after local midnight."""

    kitchen: list[float] = field(default_factory=list)
    door: list[float] = field(default_factory=list)
    use: list[tuple[float, float]] = field(default_factory=list)  # (minute, kWh)
    water: list[tuple[float, float]] = field(default_factory=list)  # (minute, litres)


def routine_day(rng: np.random.Generator, *, wake: float) -> Day:
    """Breakfast, a morning about the flat, lunch, a nap, the afternoon, dinner, television, bed."""
    d = Day()
    bed = rng.normal(21.5 * 60, 20)

    def burst(start: float, length: float) -> None:
        t = start
        while t < start + length:
            d.kitchen.append(t)
            t += rng.uniform(2, 6)

    def wander(start: float, end: float) -> None:
        t = start + rng.uniform(10, 40)
        while t < end:
            d.kitchen.append(t)
            t += rng.uniform(10, 45)

    first = wake + rng.uniform(0, 8)
    burst(first, 40)
    d.use.append((first + rng.uniform(3, 10), 0.05))  # kettle
    d.water.extend([(wake + rng.uniform(15, 25), 35.0), (wake + rng.uniform(26, 30), 25.0)])  # shower
    lunch = rng.normal(11.5 * 60, 10)
    wander(first + 40, lunch)
    burst(lunch, 45)
    d.use.extend([(lunch + rng.uniform(0, 10), 0.15), (lunch + rng.uniform(15, 30), 0.15)])
    d.water.append((lunch + rng.uniform(40, 50), 12.0))
    nap_end = rng.normal(14.5 * 60, 15)
    dinner = rng.normal(17.5 * 60, 10)
    wander(nap_end, dinner)
    burst(dinner, 60)
    d.use.extend([(dinner + rng.uniform(0, 10), 0.2), (dinner + rng.uniform(20, 40), 0.2)])
    d.water.append((dinner + rng.uniform(60, 75), 18.0))
    wander(dinner + 60, bed - 10)
    t = 19 * 60 + rng.uniform(0, 10)
    while t < bed - 15:
        d.use.append((t, 0.03))  # television
        t += rng.uniform(8, 12)
    for _ in range(rng.integers(5, 9)):  # toilet flushes in waking hours
        d.water.append((rng.uniform(wake, bed), 6.0))
    if rng.random() < 0.3:  # a night visit
        night = rng.uniform(2 * 60, 3.5 * 60)
        d.kitchen.append(night)
        d.water.append((night + 2, 6.0))
    if rng.random() < 0.6:  # out to the market
        out = rng.normal(9.5 * 60, 30)
        d.door.extend([out, out + rng.uniform(40, 100)])
    if rng.random() < 0.5:  # an afternoon walk
        out = rng.normal(16 * 60, 30)
        d.door.extend([out, out + rng.uniform(30, 60)])
    return d


STANDBY_KWH = 0.03  # per quarter hour: the fridge and the router


def wake_time(rng: np.random.Generator, day: date, *, holidays: set[date], market_wednesdays: bool) -> float:
    if market_wednesdays and day.weekday() == 2:
        return rng.normal(6 * 60, 8)
    weekend = day_type(day, holidays=holidays) == "weekend"
    return rng.normal(8.5 * 60 if weekend else 7.5 * 60, 10)


@dataclass
class Household:
    """Every stream of a generated household over whole local days from ``first``."""

    first: date
    days: list[Day]
    activities: list[Activity]
    water: list[tuple[datetime, float]]
    quarters: list[datetime]
    kwh: np.ndarray
    readings: tuple[list[datetime], list[float]]


def household(
    first: date,
    count: int,
    *,
    seed: int,
    holidays: set[date] | None = None,
    market_wednesdays: bool = False,
    silent_from: datetime | None = None,
    leak_from: datetime | None = None,
    reset_at: datetime | None = None,
) -> Household:
    """A household over ``count`` days. Faults: every source falls silent at ``silent_from``; a
    drip of 0.5 L per quarter hour from ``leak_from``; the meter restarts from 0 at ``reset_at``."""
    rng = np.random.default_rng(seed)
    holidays = holidays or set()
    days = [
        routine_day(
            rng,
            wake=wake_time(
                rng, first + timedelta(days=i), holidays=holidays, market_wednesdays=market_wednesdays
            ),
        )
        for i in range(count)
    ]
    keep = (lambda t: t < silent_from) if silent_from else (lambda t: True)
    kitchen, door, use = [], [], []
    for i, d in enumerate(days):
        day = first + timedelta(days=i)
        kitchen += [t for t in (at(day, m) for m in d.kitchen) if keep(t)]
        door += [t for t in (at(day, m) for m in d.door) if keep(t)]
        use += [(at(day, m), kwh) for m, kwh in d.use if keep(at(day, m))]
    start = at(first, 0)
    quarters = [start + QUARTER * i for i in range(96 * count)]
    kwh = np.full(len(quarters), STANDBY_KWH) * rng.uniform(0.9, 1.1, len(quarters))
    litres = np.zeros(len(quarters))
    for moment, amount in use:
        kwh[int((moment - start) / QUARTER)] += amount
    for i, d in enumerate(days):
        for m, amount in d.water:
            moment = at(first + timedelta(days=i), m)
            if keep(moment) and moment < quarters[-1] + QUARTER:
                litres[int((moment - start) / QUARTER)] += amount
    if leak_from:
        litres[[q >= leak_from for q in quarters]] += 0.5
    counter = 8123.4 + np.cumsum(np.concatenate(([0.0], kwh)))
    times = [*quarters, quarters[-1] + QUARTER]
    values = counter.tolist()
    if reset_at:
        cut = times.index(reset_at)
        values = values[:cut] + (counter[cut:] - counter[cut - 1]).tolist()
    # Readings arrive shuffled, and some twice.
    order = rng.permutation(len(times)).tolist() + rng.choice(len(times), len(times) // 50).tolist()
    return Household(
        first=first,
        days=days,
        activities=[
            Activity("kitchen", "motion", kitchen),
            Activity("front door", "door", door),
            Activity("electricity", "use", [t for t, _ in use]),
        ],
        water=list(zip(quarters, litres.tolist(), strict=True)),
        quarters=quarters,
        kwh=kwh,
        readings=([times[i] for i in order], [values[i] for i in order]),
    )


def forecast_interval(first: date, count: int, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The household's own interval per quarter hour: quantiles of 120 simulated days per day type."""
    lows, highs = {}, {}
    for kind in ("weekday", "weekend"):
        rows = []
        rng = np.random.default_rng(1234)
        for _ in range(120):
            wake = rng.normal(8.5 * 60 if kind == "weekend" else 7.5 * 60, 10)
            d = routine_day(rng, wake=wake)
            row = np.full(96, STANDBY_KWH) * rng.uniform(0.9, 1.1, 96)
            for m, amount in d.use:
                row[min(int(m // 15), 95)] += amount
            rows.append(row)
        lows[kind] = np.quantile(rows, (1 - level) / 2, axis=0)
        highs[kind] = np.quantile(rows, 1 - (1 - level) / 2, axis=0)
    low = np.concatenate([lows[day_type(first + timedelta(days=i))] for i in range(count)])
    high = np.concatenate([highs[day_type(first + timedelta(days=i))] for i in range(count)])
    return low, high


HISTORY = date(2026, 2, 2)  # a Monday: five weeks of history, then the week under test
WEEK = HISTORY + timedelta(weeks=5)


def all_alerts(h: Household, *, check_every: timedelta = timedelta(minutes=15)) -> list[Alert]:
    """Every detector over the week under test, inactivity checked every quarter hour."""
    week = [(t, v) for t, v in h.water if t >= at(WEEK, 0)]
    alerts = water_leak(week, tz=SHANGHAI)
    times, values = h.readings
    energy = deltas(times, values, max_rate=10.0)
    alerts += counter_alerts(energy.events, subject="electricity")
    start = (at(WEEK, 0) - h.quarters[0]) // QUARTER
    low, high = forecast_interval(WEEK, 7)
    alerts += abnormal_use(h.quarters[start:], h.kwh[start:], lower=low, upper=high, tz=SHANGHAI)
    for i in range(7):
        day = WEEK + timedelta(days=i)
        routine = learn_routine(h.activities, today=day, tz=SHANGHAI)
        moment = at(day, 0)
        while moment < at(day, 24 * 60):
            for alert in check_inactivity(routine, h.activities, now=moment):
                if all(
                    (a.kind, a.subject, a.start) != (alert.kind, alert.subject, alert.start) for a in alerts
                ):
                    alerts.append(alert)
            moment += check_every
    return alerts


def test_a_normal_week_raises_no_alert_from_any_detector() -> None:
    h = household(HISTORY, 42, seed=1)
    assert all_alerts(h) == []


def test_an_injected_leak_is_the_one_alert_of_the_week() -> None:
    h = household(HISTORY, 42, seed=1, leak_from=at(WEEK + timedelta(days=2), 0))
    (alert,) = all_alerts(h)
    assert (alert.kind, alert.reason_template, alert.start) == (
        "leak",
        LEAK_ALL_DAY,
        at(WEEK + timedelta(days=2), 0),
    )
    assert alert.params["hours"] == 5 * 24
    assert alert.params["min"] == 2.0  # 0.5 L every quarter hour


def test_an_injected_counter_reset_is_the_one_alert_and_no_day_goes_negative() -> None:
    moment = at(WEEK + timedelta(days=3), 14 * 60)
    h = household(HISTORY, 42, seed=1, reset_at=moment)
    (alert,) = all_alerts(h)
    assert (alert.kind, alert.start, alert.reason_template) == ("counter_reset", moment, RESET)
    energy = deltas(*h.readings, max_rate=10.0)
    daily = bucket_energy(energy, interval="1d", tz=SHANGHAI)
    true_daily = h.kwh.reshape(42, 96).sum(axis=1)
    assert all(kwh >= 0 for _, kwh in daily)
    assert [kwh for _, kwh in daily] == pytest.approx(true_daily.tolist())


def test_an_injected_inactive_day_raises_inactivity_and_low_use_only() -> None:
    silent = at(WEEK + timedelta(days=4), 0)  # Friday: the resident does not get up
    h = household(HISTORY, 42, seed=1, silent_from=silent)
    alerts = [a for a in all_alerts(h) if a.start < at(WEEK + timedelta(days=5), 0)]
    inactive = [a for a in alerts if a.kind == "inactivity"]
    assert {a.subject for a in inactive} == {"kitchen", "electricity"}
    assert all(a.start < silent and a.end.astimezone(SHANGHAI).hour < 9 for a in inactive)
    others = [a for a in alerts if a.kind != "inactivity"]
    assert {(a.kind, a.reason_template) for a in others} == {("abnormal", USE_BELOW)}
    assert all(a.start >= silent for a in others)


# --- inactivity in detail ------------------------------------------------------------------------


def history_firsts(h: Household, *, before: date) -> list[float]:
    """The kitchen's first motion after 04:00 on the days before ``before`` of its day type."""
    return [
        min(m for m in d.kitchen if m >= 240)
        for i, d in enumerate(h.days[: (before - h.first).days])
        if day_type(h.first + timedelta(days=i)) == day_type(before)
    ]


def test_a_morning_without_activity_fires_at_the_usual_time_plus_its_allowance() -> None:
    tuesday = WEEK + timedelta(days=1)
    h = household(HISTORY, 37, seed=3, silent_from=at(tuesday, 0))
    firsts = np.asarray(history_firsts(h, before=tuesday))
    usual = float(np.median(firsts))
    spread = max(1.4826 * float(np.median(np.abs(firsts - usual))), 10.0)
    due = usual + max(3 * spread, 30)
    routine = learn_routine(h.activities, today=tuesday, tz=SHANGHAI)
    kitchen = [
        a for a in check_inactivity(routine, h.activities, now=at(tuesday, due - 1)) if a.subject == "kitchen"
    ]
    assert kitchen == []
    alerts = check_inactivity(routine, h.activities, now=at(tuesday, due + 1))
    (alert,) = [a for a in alerts if a.subject == "kitchen"]
    last = max(h.activities[0].times)
    whole = round(usual)
    expected = f"no motion in the kitchen since {last.astimezone(SHANGHAI):%Y-%m-%d %H:%M}; usually {whole // 60:02d}:{whole % 60:02d} ± {round(spread)} min"
    assert alert.reason_template == MOTION_MORNING
    assert alert.reason == expected
    assert alert.start == last


def test_the_product_wording_of_the_morning_alert() -> None:
    alert = Alert(
        kind="inactivity",
        subject="kitchen",
        start=at(WEEK, 9 * 60 + 10),
        end=at(WEEK, 10 * 60),
        severity="warning",
        reason_template=MOTION_MORNING,
        params={"place": "kitchen", "since": "09:10", "usual": "07:30", "spread": 25},
    )
    assert alert.reason == "no motion in the kitchen since 09:10; usually 07:30 ± 25 min"


def test_activity_that_stops_at_noon_fires_in_the_afternoon() -> None:
    wednesday = WEEK + timedelta(days=2)
    h = household(HISTORY, 38, seed=4, silent_from=at(wednesday, 12 * 60))
    routine = learn_routine(h.activities, today=wednesday, tz=SHANGHAI)
    moment, fired = at(wednesday, 12 * 60), None
    while moment < at(wednesday, 20 * 60) and fired is None:
        fired = next(
            (a for a in check_inactivity(routine, h.activities, now=moment) if a.subject == "kitchen"), None
        )
        moment += timedelta(minutes=5)
    assert fired is not None
    assert 13 <= fired.end.astimezone(SHANGHAI).hour < 18
    last = max(t for t in h.activities[0].times if t < at(wednesday, 12 * 60))
    assert fired.reason_template == MOTION_PAUSE
    assert fired.params["since"] == clock_text(last, tz=SHANGHAI)
    assert fired.params["gap"] == round((fired.end - last) / timedelta(minutes=1))
    assert fired.start == last


def test_a_later_weekend_morning_is_not_an_alert_and_a_holiday_counts_as_weekend() -> None:
    saturday = WEEK + timedelta(days=5)
    h = household(HISTORY, 41, seed=5)
    now = at(saturday, 8 * 60 + 20)  # well past a weekday's due time, before a weekend's
    assert [a for a in inactivity(h.activities, now=now, tz=SHANGHAI) if a.subject == "kitchen"] == []
    monday = WEEK  # a public holiday spent like a Sunday
    h = household(HISTORY, 36, seed=6, holidays={monday}, silent_from=at(monday, 8 * 60 + 20))
    now = at(monday, 8 * 60 + 20)
    as_holiday = inactivity(h.activities, now=now, tz=SHANGHAI, holidays={monday})
    as_weekday = inactivity(h.activities, now=now, tz=SHANGHAI)
    assert [a.subject for a in as_holiday] == []
    assert "kitchen" in [a.subject for a in as_weekday]


def test_a_day_of_the_week_with_its_own_routine_is_learned_once_there_are_enough_weeks() -> None:
    first = HISTORY - timedelta(weeks=3)  # eight weeks of history
    wednesday = WEEK + timedelta(days=2)
    h = household(first, 8 * 7 + 3, seed=7, market_wednesdays=True, silent_from=at(wednesday, 0))
    routine = learn_routine(h.activities, today=wednesday, tz=SHANGHAI)
    kitchen = routine.sources[0]
    habit = routine.habit(kitchen, wednesday)
    assert habit is not None and habit.key == "wed"
    assert habit.first_usual == pytest.approx(6 * 60 + 4, abs=10)
    assert routine.habit(kitchen, wednesday + timedelta(days=1)).key == "thu"  # type: ignore[union-attr]
    alerts = check_inactivity(routine, h.activities, now=at(wednesday, 6 * 60 + 50))
    assert [a.subject for a in alerts if a.subject == "kitchen"] == ["kitchen"]


def test_too_little_history_is_refused_with_the_number_of_days_found() -> None:
    h = household(HISTORY, 10, seed=8)
    with pytest.raises(
        Invalid, match="only 9 days with activity in the 8 weeks before 2026-02-11: at least 14"
    ):
        learn_routine(h.activities, today=HISTORY + timedelta(days=9), tz=SHANGHAI)


def test_an_unusual_source_without_a_regular_morning_has_no_morning_rule() -> None:
    h = household(HISTORY, 36, seed=9)
    routine = learn_routine(h.activities, today=WEEK, tz=SHANGHAI)
    door = routine.habit(routine.sources[1], WEEK)
    assert door is not None and door.first_usual is None
    assert door.first_days < 0.8 * door.days


# --- leaks, abnormal use and counter events on hand numbers --------------------------------------


def test_flow_through_the_whole_night_is_a_leak_and_one_stop_is_not() -> None:
    day = date(2026, 3, 2)
    flows = [(at(day, 15 * i), 0.0) for i in range(96)]
    night = [(t, 3.0 if 60 <= (t - at(day, 0)) / timedelta(minutes=1) < 300 else v) for t, v in flows]
    (alert,) = water_leak(night, tz=SHANGHAI)
    assert (alert.reason_template, alert.start, alert.end) == (LEAK_NIGHT, at(day, 60), at(day, 300))
    assert alert.reason == "flow never stopped between 01:00 and 05:00 (at least 3.0 L per 15 min)"
    stopped = [(t, 0.0 if t == at(day, 180) else v) for t, v in night]
    assert water_leak(stopped, tz=SHANGHAI) == []


def test_a_missing_night_interval_is_not_taken_as_flow() -> None:
    day = date(2026, 3, 2)
    flows = [(at(day, 15 * i), 3.0) for i in range(4, 20) if i != 10]
    assert water_leak(flows, tz=SHANGHAI) == []


def test_hourly_flow_for_a_day_and_more_is_one_leak_in_cubic_metres() -> None:
    day = date(2026, 3, 2)
    flows = [(at(day, 60 * h), 0.004 + 0.001 * (h % 3)) for h in range(30)]
    (alert,) = water_leak(flows, tz=SHANGHAI, interval="1h", unit="m3")
    assert alert.reason == "water has flowed every hour for 30 h; the lowest hour used 4.0 L"
    assert (alert.start, alert.end, alert.severity) == (at(day, 0), at(day, 30 * 60), "critical")
    assert water_leak(flows, tz=SHANGHAI, interval="1h", unit="m3", still=5.0, night=(time(1), time(2))) == []


def test_use_above_the_interval_for_long_enough_is_flagged_with_how_far() -> None:
    day = date(2026, 3, 2)
    starts = [at(day, 18 * 60 + 15 * i) for i in range(8)]
    actual = [0.2, 0.9, 1.0, 1.1, 1.2, 0.2, 0.9, 0.2]
    lower, upper = [0.1] * 8, [0.5] * 8
    (alert,) = abnormal_use(starts, actual, lower=lower, upper=upper, tz=SHANGHAI, min_run=4)
    assert alert.reason == "use was 4.2 kWh between 18:15 and 19:15, above the expected 0.4–2.0 kWh"
    assert alert.params["excess"] == pytest.approx(2.2)
    assert abnormal_use(starts, actual, lower=lower, upper=upper, tz=SHANGHAI, min_run=5) == []
    assert (
        abnormal_use(starts, actual, lower=lower, upper=upper, tz=SHANGHAI, min_run=4, min_excess=3.0) == []
    )


def test_use_below_the_interval_and_a_gap_in_the_slots_end_a_run() -> None:
    day = date(2026, 3, 2)
    starts = [at(day, 15 * i) for i in range(4)] + [at(day, 15 * i) for i in range(5, 8)]
    actual = [0.0] * 7
    alerts = abnormal_use(starts, actual, lower=[0.1] * 7, upper=[0.5] * 7, tz=SHANGHAI, min_run=3)
    assert [(a.reason_template, a.params["slots"]) for a in alerts] == [(USE_BELOW, 4), (USE_BELOW, 3)]
    assert USE_ABOVE in MESSAGES


def test_a_run_across_midnight_names_its_dates() -> None:
    starts = [at(date(2026, 3, 2), 23 * 60 + 15 * i) for i in range(8)]
    (alert,) = abnormal_use(starts, [1.0] * 8, lower=[0.0] * 8, upper=[0.5] * 8, tz=SHANGHAI)
    assert (alert.params["start"], alert.params["end"]) == ("2026-03-02 23:00", "2026-03-03 01:00")


def test_counter_events_become_alerts_with_their_reasons() -> None:
    day = date(2026, 3, 2)
    times = [at(day, 60 * h) for h in range(5)]
    energy = deltas(times, [100.0, 101.0, 0.5, 40.0, 99999.0], max_rate=50.0)
    alerts = counter_alerts(energy.events, subject="electricity")
    assert [a.kind for a in alerts] == ["counter_reset", "counter_jump"]
    assert alerts[0].reason == "the counter fell from 101.0 to 0.5: a restart from 0, so 0.5 was counted"


def test_bad_detector_input_is_refused() -> None:
    day = date(2026, 3, 2)
    with pytest.raises(Invalid, match=r"lower bound 2.0 is above the upper bound 1.0"):
        abnormal_use([at(day, 0)], [1.0], lower=[2.0], upper=[1.0], tz=SHANGHAI)
    with pytest.raises(Invalid, match="upper has 2 values for 1 slots"):
        abnormal_use([at(day, 0)], [1.0], lower=[0.0], upper=[1.0, 2.0], tz=SHANGHAI)
    with pytest.raises(Invalid, match="amounts are >= 0"):
        water_leak([(at(day, 0), -1.0)], tz=SHANGHAI)
    with pytest.raises(Invalid, match="without a timezone"):
        water_leak([(datetime(2026, 3, 2), 1.0)], tz=SHANGHAI)


def test_every_template_is_listed_once() -> None:
    assert len(set(MESSAGES + INACTIVITY_MESSAGES)) == len(MESSAGES) + len(INACTIVITY_MESSAGES) == 10

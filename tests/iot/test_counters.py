"""Energy from cumulative counters: resets, swaps, jitter, repeats, order, gaps and local days."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhishe.core.errors import Invalid
from zhishe.iot.counters import DECLARED_SWAP, MESSAGES, RESET, Swap, bucket_energy, deltas

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Shanghai on 2026-03-<day>, as aware UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def hourly(day: int, values: list[float]) -> tuple[list[datetime], list[float]]:
    return [local(day, 0) + timedelta(hours=h) for h in range(len(values))], values


def test_a_reset_mid_day_gives_the_true_daily_kwh_and_no_negative_hour() -> None:
    # 1 kWh an hour all day; the device reboots just after the 12:00 reading and counts from 0.
    values = [1000.0 + h for h in range(13)] + [float(h) for h in range(1, 13)]
    times, values = hourly(2, values)  # 00:00 on the 2nd to 00:00 on the 3rd: 25 readings
    energy = deltas(times, values)
    assert [e.kind for e in energy.events] == ["reset"]
    assert energy.events[0].time == local(2, 13)
    assert energy.events[0].reason_template == RESET
    assert energy.events[0].params == {"before": 1012.0, "after": 1.0, "counted": 1.0}
    days = bucket_energy(energy, interval="1d", tz=SHANGHAI)
    assert days == [(local(2, 0), pytest.approx(24.0))]
    hours = bucket_energy(energy, interval="1h", tz=SHANGHAI)
    assert len(hours) == 24
    assert all(kwh == pytest.approx(1.0) for _, kwh in hours)


def test_a_declared_swap_counts_the_old_meters_tail_and_the_new_meters_rise() -> None:
    times = [local(5, 9), local(5, 10), local(5, 11), local(5, 12)]
    values = [4999.0, 5000.0, 100.5, 101.5]
    swap = Swap(time=local(5, 10, 30), old_final=5000.5, new_initial=100.0)
    energy = deltas(times, values, swaps=[swap])
    assert energy.amounts.tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert [(e.kind, e.reason_template) for e in energy.events] == [("swap", DECLARED_SWAP)]
    assert (
        energy.events[0].reason
        == "meter swapped: the old meter ended at 5000.5, the new one started at 100.0"
    )


def test_a_declared_swap_given_as_a_plain_tuple_is_the_same() -> None:
    times = [local(5, 9), local(5, 10), local(5, 11)]
    energy = deltas(times, [10.0, 12.0, 3.0], swaps=[(local(5, 10, 5), 12.5, 2.0)])
    assert energy.amounts.tolist() == pytest.approx([2.0, 1.5])


def test_a_detected_swap_to_a_lower_reading_counts_nothing_for_its_interval() -> None:
    times, values = hourly(6, [5000.0, 5001.0, 3000.5, 3001.5])
    energy = deltas(times, values)
    assert energy.amounts.tolist() == pytest.approx([1.0, 0.0, 1.0])
    (event,) = energy.events
    assert (event.kind, event.before, event.after) == ("swap", 5001.0, 3000.5)
    assert "taken as a new meter" in event.reason


def test_a_small_new_reading_is_a_swap_not_a_reset_when_it_is_beyond_the_maximum_rate() -> None:
    # 20 kWh in 15 minutes after a drop from 5000: no household restarts and uses that much.
    times = [local(6, 10), local(6, 10, 15), local(6, 10, 30)]
    energy = deltas(times, [5000.0, 20.0, 20.5], max_rate=30.0)
    assert [e.kind for e in energy.events] == ["swap"]
    assert energy.amounts.tolist() == pytest.approx([0.0, 0.5])


def test_an_implausible_jump_counts_zero_and_says_why() -> None:
    times, values = hourly(7, [100.0, 101.0, 9000.0, 9001.0])
    energy = deltas(times, values, max_rate=20.0)
    assert energy.amounts.tolist() == pytest.approx([1.0, 0.0, 1.0])
    (event,) = energy.events
    assert event.kind == "jump"
    assert event.reason == (
        "the counter rose from 101.0 to 9000.0 in 60.0 min, more than the 20.0 per hour allowed: "
        "nothing was counted for this interval"
    )


def test_a_rise_within_the_maximum_rate_after_a_long_gap_is_not_a_jump() -> None:
    times = [local(7, 0), local(8, 0)]  # a day apart: 100 kWh at up to 20 kWh/h is plausible
    energy = deltas(times, [100.0, 200.0], max_rate=20.0)
    assert energy.events == ()
    assert energy.total == pytest.approx(100.0)


def test_jitter_below_the_reference_is_ignored_and_not_counted_twice() -> None:
    times, values = hourly(8, [100.0, 100.3, 100.25, 100.6])
    energy = deltas(times, values)
    assert energy.amounts.tolist() == pytest.approx([0.3, 0.0, 0.3])
    assert energy.events == ()
    assert energy.jitter == 1


def test_exact_repeats_are_dropped_and_a_conflict_keeps_the_higher_reading() -> None:
    times, values = hourly(9, [10.0, 11.0, 12.0])
    repeated = deltas(times + times[:2], values + values[:2])
    assert repeated.repeats == 2
    assert repeated.amounts.tolist() == pytest.approx([1.0, 1.0])
    conflicting = deltas([*times, times[1]], [*values, 11.5])
    assert conflicting.amounts.tolist() == pytest.approx([1.5, 0.5])
    (event,) = conflicting.events
    assert (event.kind, event.params) == ("conflict", {"low": 11.0, "high": 11.5})


def test_out_of_order_readings_give_the_same_deltas_as_sorted_ones() -> None:
    rng = random.Random(7)
    times = [local(10, 0) + timedelta(minutes=15 * i) for i in range(96)]
    values = [500.0 + 0.1 * i * i / 96 for i in range(96)]
    shuffled = list(zip(times, values, strict=True))
    rng.shuffle(shuffled)
    ordered = deltas(times, values)
    mixed = deltas([t for t, _ in shuffled], [v for _, v in shuffled])
    assert mixed.intervals() == ordered.intervals()


def test_the_previous_reading_is_the_baseline_of_the_first_interval() -> None:
    energy = deltas([local(11, 1), local(11, 2)], [12.0, 13.5], previous=(local(11, 0), 10.0))
    assert energy.intervals() == [(local(11, 0), local(11, 1), 2.0), (local(11, 1), local(11, 2), 1.5)]
    with pytest.raises(Invalid, match="is not before the first reading"):
        deltas([local(11, 1)], [12.0], previous=(local(11, 1), 10.0))


def test_an_interval_spanning_several_buckets_is_split_in_proportion_to_time() -> None:
    energy = deltas([local(12, 10, 5), local(12, 10, 50)], [0.0, 9.0])
    buckets = bucket_energy(energy, interval="15min", tz=SHANGHAI)
    assert [b for b, _ in buckets] == [local(12, 10), local(12, 10, 15), local(12, 10, 30), local(12, 10, 45)]
    assert [kwh for _, kwh in buckets] == pytest.approx([2.0, 3.0, 3.0, 1.0])


def test_buckets_without_consumption_between_readings_are_listed_as_zero() -> None:
    energy = deltas([local(12, 0), local(12, 1), local(12, 4)], [0.0, 1.0, 1.0])
    buckets = bucket_energy(energy, interval="1h", tz=SHANGHAI)
    assert buckets == [(local(12, 0), 1.0), (local(12, 1), 0.0), (local(12, 2), 0.0), (local(12, 3), 0.0)]


def test_day_buckets_start_at_midnight_in_shanghai() -> None:
    # 23:00 to 01:00 local is 15:00 to 17:00 UTC: half of the 2 kWh falls on each local day.
    energy = deltas([local(13, 23), local(14, 1)], [0.0, 2.0])
    days = bucket_energy(energy, interval="1d", tz=SHANGHAI)
    assert days == [
        (datetime(2026, 3, 12, 16, tzinfo=UTC), pytest.approx(1.0)),
        (datetime(2026, 3, 13, 16, tzinfo=UTC), pytest.approx(1.0)),
    ]
    assert [b for b, _ in days] == [local(13, 0), local(14, 0)]


def test_hour_buckets_follow_local_hours_in_a_half_hour_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: local hours start at half past UTC hours
    start = datetime(2026, 3, 1, 10, 0, tzinfo=kolkata)
    energy = deltas([start, start + timedelta(hours=2)], [0.0, 2.0])
    hours = bucket_energy(energy, interval="1h", tz=kolkata)
    assert [b.astimezone(kolkata).hour for b, _ in hours] == [10, 11]


def test_bad_readings_are_refused_with_their_position() -> None:
    with pytest.raises(Invalid, match=r"counter reading 1 is -1.0"):
        deltas([local(1, 0), local(1, 1)], [1.0, -1.0])
    with pytest.raises(Invalid, match="counter reading 0 is nan"):
        deltas([local(1, 0)], [math.nan])
    with pytest.raises(Invalid, match="has no timezone"):
        deltas([datetime(2026, 3, 1)], [1.0])
    with pytest.raises(Invalid, match="2 times but 1 values"):
        deltas([local(1, 0), local(1, 1)], [1.0])


def test_every_message_template_is_a_listed_literal() -> None:
    assert len(MESSAGES) == len(set(MESSAGES)) == 5
    assert all("{" in m for m in MESSAGES)


# --- properties ----------------------------------------------------------------------------------


@st.composite
def counter_series(draw: st.DrawFn) -> tuple[list[datetime], list[float], float]:
    """Readings of a counter with non-negative increments and injected drops (resets to a small
    value or swaps to any value), at irregular times; also the true consumption when every drop
    is a clean reset."""
    count = draw(st.integers(2, 60))
    increments = draw(st.lists(st.floats(0, 50, allow_nan=False), min_size=count, max_size=count))
    gaps = draw(st.lists(st.integers(1, 36 * 60), min_size=count, max_size=count))
    drops = draw(
        st.lists(st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), min_size=count, max_size=count)
    )
    start = draw(st.floats(0, 1e6, allow_nan=False))
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 10_000)))
    times, values, value = [], [], start
    for increment, gap, drop in zip(increments, gaps, drops, strict=True):
        moment += timedelta(minutes=gap)
        value = drop if drop is not None else value + increment
        times.append(moment)
        values.append(value)
    return times, values, sum(increments[1:])


@settings(max_examples=200, deadline=None)
@given(series=counter_series(), interval=st.sampled_from(["15min", "1h", "1d"]))
def test_no_bucket_is_ever_negative_and_buckets_conserve_the_deltas(
    series: tuple[list[datetime], list[float], float], interval: str
) -> None:
    times, values, _ = series
    energy = deltas(times, values, max_rate=None if len(times) % 2 else 100.0)
    assert (energy.amounts >= 0).all()
    buckets = bucket_energy(energy, interval=interval, tz=SHANGHAI)  # type: ignore[arg-type]
    assert all(kwh >= 0 for _, kwh in buckets)
    assert sum(kwh for _, kwh in buckets) == pytest.approx(energy.total, rel=1e-9, abs=1e-6)
    starts = [b for b, _ in buckets]
    assert starts == sorted(set(starts))


@settings(max_examples=200, deadline=None)
@given(
    increments=st.lists(st.floats(0, 5, allow_nan=False), min_size=3, max_size=80),
    resets=st.sets(st.integers(1, 79)),
)
def test_clean_resets_lose_no_consumption(increments: list[float], resets: set[int]) -> None:
    # A counter of 100 or more that restarts from 0 just after a reading: every increment counts.
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(len(increments))]
    values, value, restarts = [], 1000.0, 0
    for i, increment in enumerate(increments):
        if i in resets and value >= 100:
            value, restarts = increment, restarts + 1
        else:
            value += increment
        values.append(value)
    energy = deltas(times, values)
    assert energy.total == pytest.approx(sum(increments[1:]), abs=1e-9)
    assert [e.kind for e in energy.events] == ["reset"] * restarts

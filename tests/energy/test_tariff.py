"""Tariffs: time-of-use periods, tiers, effective dates and validation, against hand-computed bills."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from zhishe.core.errors import Invalid
from zhishe.energy.tariff import (
    Schedule,
    Tariff,
    Tier,
    Window,
    cost,
    day_type,
    tariff_from_definition,
    validate_tariffs,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAY = Schedule(
    days="weekday",
    windows=(
        Window("valley", time(23), time(7)),
        Window("flat", time(7), time(8)),
        Window("peak", time(8), time(11)),
        Window("flat", time(11), time(18)),
        Window("peak", time(18), time(23)),
    ),
)
WEEKEND = Schedule(
    days="weekend", windows=(Window("valley", time(23), time(7)), Window("flat", time(7), time(23)))
)
PRICES = {"peak": D("1.00"), "flat": D("0.60"), "valley": D("0.30")}


def tou(**changes: object) -> Tariff:
    fields: dict[str, object] = {
        "name": "tou-2026",
        "valid_from": date(2026, 1, 1),
        "prices": PRICES,
        "schedules": (WEEKDAY, WEEKEND),
    }
    fields.update(changes)
    return Tariff(**fields)  # type: ignore[arg-type]


def flat(price: str, **changes: object) -> Tariff:
    fields: dict[str, object] = {
        "name": f"flat-{price}",
        "valid_from": date(2026, 1, 1),
        "prices": {"flat": D(price)},
        "schedules": (Schedule(windows=(Window("flat", time(0), time(0)),)),),
    }
    fields.update(changes)
    return Tariff(**fields)  # type: ignore[arg-type]


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def days(first: date, count: int, kwh: float) -> list[tuple[datetime, float]]:
    return [(at(first + timedelta(days=i)), kwh) for i in range(count)]


MONDAY, SATURDAY = date(2026, 3, 2), date(2026, 3, 7)


def test_hours_on_a_weekday_morning_are_priced_by_their_period() -> None:
    buckets = [(at(MONDAY, 6), 2.0), (at(MONDAY, 7), 1.0), (at(MONDAY, 8), 3.0)]
    bill = cost(buckets, [tou()], tz=SHANGHAI, interval="1h")
    assert [b.amount for b in bill.buckets] == [D("0.6000"), D("0.6000"), D("3.0000")]
    assert bill.by_period == {"valley": D("0.60"), "flat": D("0.60"), "peak": D("3.00")}
    assert bill.total == D("4.20")
    assert bill.kwh == D("6")


def test_a_day_bucket_is_shared_across_the_periods_it_crosses() -> None:
    # 24 kWh evenly over a weekday: 8 h valley, 8 h flat, 8 h peak.
    bill = cost([(at(MONDAY), 24.0)], [tou()], tz=SHANGHAI, interval="1d")
    assert bill.by_period == {"valley": D("2.40"), "flat": D("4.80"), "peak": D("8.00")}
    assert bill.total == D("15.20")
    # The same on a Saturday: 8 h valley, 16 h flat.
    weekend = cost([(at(SATURDAY), 24.0)], [tou()], tz=SHANGHAI, interval="1d")
    assert weekend.total == D("12.00")


def test_an_hour_bucket_cut_by_a_half_hour_edge_is_split_by_time() -> None:
    schedule = Schedule(
        windows=(Window("valley", time(22, 30), time(7, 30)), Window("flat", time(7, 30), time(22, 30)))
    )
    tariff = Tariff(
        name="half",
        valid_from=date(2026, 1, 1),
        prices={"valley": D("0.30"), "flat": D("0.60")},
        schedules=(schedule,),
    )
    bill = cost([(at(MONDAY, 7), 2.0)], [tariff], tz=SHANGHAI, interval="1h")
    assert bill.total == D("0.90")  # 1 kWh at 0.30 and 1 kWh at 0.60


def test_holidays_price_as_weekend_and_make_up_workdays_as_weekday() -> None:
    holiday = date(2026, 4, 6)  # a Monday
    assert day_type(holiday, holidays={holiday}) == "weekend"
    assert day_type(SATURDAY, workdays={SATURDAY}) == "weekday"
    on_holiday = cost([(at(holiday), 24.0)], [tou()], tz=SHANGHAI, interval="1d", holidays={holiday})
    on_workday = cost([(at(SATURDAY), 24.0)], [tou()], tz=SHANGHAI, interval="1d", workdays={SATURDAY})
    assert (on_holiday.total, on_workday.total) == (D("12.00"), D("15.20"))


def test_a_bucket_that_crosses_a_tier_threshold_is_split_across_the_tiers() -> None:
    tiers = (Tier(D(200), D(0)), Tier(D(400), D("0.05")), Tier(None, D("0.30")))
    tariff = flat("0.50", tiers=tiers, cycle="month")
    # 15 kWh a day from 1 March: the 14th takes the total from 195 to 210 kWh.
    bill = cost(days(date(2026, 3, 1), 14, 15.0), [tariff], tz=SHANGHAI, interval="1d")
    assert bill.kwh_by_tier == {1: D(200), 2: D(10)}
    assert bill.by_tier == {1: D("100.00"), 2: D("5.50")}
    assert bill.buckets[-1].amount == D("8.0000")  # 5 kWh at 0.50 and 10 kWh at 0.55
    assert bill.total == D("105.50")
    assert bill.tier_used == {date(2026, 3, 1): D(210)}


def test_tier_counting_starts_from_what_the_cycle_used_before_and_restarts_with_the_cycle() -> None:
    tiers = (Tier(D(100), D(0)), Tier(None, D("0.30")))
    tariff = flat("0.50", tiers=tiers, cycle="month")
    buckets = [(at(date(2026, 3, 31), 23, 45), 4.0), (at(date(2026, 4, 1), 0, 0), 4.0)]
    bill = cost(buckets, [tariff], tz=SHANGHAI, used_before=D(98))
    # March: 2 kWh at 0.50 then 2 kWh at 0.80; April starts again at tier 1: 4 kWh at 0.50.
    assert [b.amount for b in bill.buckets] == [D("2.6000"), D("2.0000")]
    assert bill.total == D("4.60")


def test_a_yearly_cycle_starts_in_its_configured_month() -> None:
    tariff = flat("0.50", tiers=(Tier(D(10), D(0)), Tier(None, D("1.00"))), cycle="year", cycle_start_month=7)
    assert tariff.cycle_start(date(2026, 3, 1)) == date(2025, 7, 1)
    assert tariff.cycle_start(date(2026, 7, 1)) == date(2026, 7, 1)
    bill = cost(days(date(2026, 6, 29), 4, 6.0), [tariff], tz=SHANGHAI, interval="1d")
    # 29 and 30 June: 10 kWh at 0.50 and 2 at 1.50; 1 and 2 July: 10 at 0.50 and 2 at 1.50.
    assert bill.total == D("16.00")


def test_a_tariff_change_mid_month_applies_from_its_local_date_and_tiers_keep_counting() -> None:
    tiers = (Tier(D(30), D(0)), Tier(None, D("0.10")))
    old = flat("0.50", name="v1", valid_to=date(2026, 3, 16), tiers=tiers, cycle="month")
    new = flat("0.60", name="v2", valid_from=date(2026, 3, 16), tiers=tiers, cycle="month")
    bill = cost(days(date(2026, 3, 14), 4, 10.0), [new, old], tz=SHANGHAI, interval="1d")
    lines = {(line.tariff, line.tier): (line.kwh, line.amount) for line in bill.lines}
    assert lines == {
        ("v1", 1): (D(20), D("10.00")),
        ("v2", 1): (D(10), D("6.00")),
        ("v2", 2): (D(10), D("7.00")),
    }
    assert bill.total == D("23.00")


def test_tiers_can_replace_the_period_price() -> None:
    tiers = (Tier(D(100), D("0.50")), Tier(None, D("0.80")))
    tariff = tou(tiers=tiers, tier_mode="replace", cycle="month")
    bill = cost(
        [(at(MONDAY), 60.0), (at(MONDAY + timedelta(days=1)), 60.0)], [tariff], tz=SHANGHAI, interval="1d"
    )
    assert bill.total == D("66.00")  # 100 kWh at 0.50 and 20 at 0.80, whatever the period


def test_each_line_is_rounded_to_the_cent_once_and_the_total_adds_the_lines() -> None:
    tariff = flat("0.617")
    buckets = [(at(MONDAY, 0, 15 * i), 1 / 3) for i in range(3)]
    bill = cost(buckets, [tariff], tz=SHANGHAI)
    (line,) = bill.lines
    assert line.kwh == D("0.999999")
    assert line.amount == D("0.62")  # 0.999999 × 0.617 = 0.616999…, rounded once
    assert bill.total == D("0.62")
    assert [b.amount for b in bill.buckets] == [D("0.2057")] * 3


def test_a_definition_round_trips_through_json_data() -> None:
    tariff = tou(tiers=(Tier(D(2760), D(0)), Tier(D(4800), D("0.05")), Tier(None, D("0.30"))))
    again = tariff_from_definition(tariff.definition(), name=tariff.name, valid_from=tariff.valid_from)
    assert again == tariff
    stored = tariff.definition() | {"prices": {"peak": 1.0, "flat": 0.6, "valley": 0.3}}
    assert tariff_from_definition(stored, name="x", valid_from=date(2026, 1, 1)).prices["flat"] == D("0.6")


# --- refusals ------------------------------------------------------------------------------------


def test_overlapping_periods_are_refused_naming_both() -> None:
    windows = (Window("valley", time(23), time(7)), Window("flat", time(6), time(23)))
    with pytest.raises(Invalid, match="period valley 23:00-07:00 overlaps flat 06:00-23:00"):
        tou(schedules=(Schedule(windows=windows),))


def test_a_day_not_covered_by_periods_is_refused_naming_the_gap() -> None:
    windows = (
        Window("valley", time(23), time(7)),
        Window("flat", time(7), time(11)),
        Window("peak", time(12), time(23)),
    )
    with pytest.raises(Invalid, match="weekday schedule: 11:00-12:00 has no period"):
        tou(schedules=(Schedule(days="weekday", windows=windows), WEEKEND))


def test_day_types_and_seasons_must_each_have_exactly_one_schedule() -> None:
    with pytest.raises(Invalid, match="no schedule for weekend days in month 1"):
        tou(schedules=(WEEKDAY,))
    summer = Schedule(days="weekday", months=frozenset({6, 7, 8, 9}), windows=WEEKDAY.windows)
    with pytest.raises(Invalid, match="weekday days in month 6 are covered by both"):
        tou(schedules=(WEEKDAY, WEEKEND, summer))


def test_a_period_without_a_price_is_refused() -> None:
    with pytest.raises(Invalid, match="period peak has no price"):
        tou(prices={"flat": D("0.6"), "valley": D("0.3")})


def test_tiers_must_ascend_and_end_unbounded() -> None:
    with pytest.raises(Invalid, match="tier 2 ends at 2760 kWh, not above tier 1's end at 4800 kWh"):
        tou(tiers=(Tier(D(4800), D(0)), Tier(D(2760), D("0.05")), Tier(None, D("0.3"))))
    with pytest.raises(Invalid, match="the last tier must have no end"):
        tou(tiers=(Tier(D(2760), D(0)),))
    with pytest.raises(Invalid, match="tier 1 has no end but is not the last tier"):
        tou(tiers=(Tier(None, D(0)), Tier(D(10), D(0))))


def test_tariffs_of_one_family_with_overlapping_dates_are_refused() -> None:
    a = flat("0.50", name="a", valid_to=date(2026, 7, 1))
    b = flat("0.60", name="b", valid_from=date(2026, 6, 1))
    with pytest.raises(Invalid, match=r"tariffs a \(2026-01-01 to 2026-07-01\) and b \(2026-06-01 to open\)"):
        validate_tariffs([b, a])
    validate_tariffs([a, flat("0.60", name="c", valid_from=date(2026, 6, 1), family="water")])


def test_consumption_on_a_day_without_a_tariff_is_refused() -> None:
    tariff = flat("0.50", valid_from=date(2026, 3, 10))
    with pytest.raises(Invalid, match="no tariff in force on 2026-03-09"):
        cost([(at(date(2026, 3, 9), 23), 1.0)], [tariff], tz=SHANGHAI, interval="1h")


def test_bad_buckets_are_refused() -> None:
    with pytest.raises(Invalid, match=r"bucket 0 has -1.0 kWh"):
        cost([(at(MONDAY), -1.0)], [flat("0.5")], tz=SHANGHAI)
    with pytest.raises(Invalid, match="without a timezone"):
        cost([(datetime(2026, 3, 2), 1.0)], [flat("0.5")], tz=SHANGHAI)
    with pytest.raises(Invalid, match="two buckets start at"):
        cost([(at(MONDAY), 1.0), (at(MONDAY), 1.0)], [flat("0.5")], tz=SHANGHAI)

"""EV charging and battery scheduling: limits, hand-checked optima, fairness, the battery, the
baselines, online re-planning and the OCPP 1.6 export."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhishe.core.errors import Invalid, NotFound
from zhishe.energy.battery import Battery
from zhishe.energy.charging import (
    ChargingPlan,
    ChargingSession,
    Fairness,
    Phase,
    Scheduler,
    Site,
    plan,
    plan_edf,
    plan_round_robin,
    simulate_online,
)
from zhishe.energy.ocpp import set_charging_profile

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MODES: tuple[Fairness, ...] = ("weighted", "staged")
WEIGHTS: dict[str | None, tuple[float, float, float]] = {
    "L1": (1, 0, 0),
    "L2": (0, 1, 0),
    "L3": (0, 0, 1),
    "L1L2L3": (1 / 3, 1 / 3, 1 / 3),
    None: (1, 1, 1),
}


def car(
    name: str,
    *,
    arrive: float = 0.0,
    leave: float = 1.0,
    kwh: float,
    kw: float,
    phase: Phase | None = "L1L2L3",
    delivered: float = 0.0,
) -> ChargingSession:
    """A session between ``arrive`` and ``leave`` hours after T0."""
    return ChargingSession(
        session_id=name,
        arrival=T0 + arrive * HOUR,
        departure=T0 + leave * HOUR,
        energy_kwh=kwh,
        max_power_kw=kw,
        phase=phase,
        delivered_kwh=delivered,
    )


def hourly_site(limit: float, base: Sequence[float]) -> Site:
    return Site(start=T0, slot=HOUR, limit_kw=limit, base_load_kw=list(base))


def energies(result: ChargingPlan) -> dict[str, float]:
    return {item.session_id: item.energy_kwh for item in result.sessions}


# --------------------------------------------------------------------------------------------------
# Invariants, checked against the inputs (not against what the plan says about itself).


def assert_within_limits(
    result: ChargingPlan,
    *,
    site: Site,
    sessions: Sequence[ChargingSession],
    battery: Battery | None = None,
    tol: float = 1e-7,
) -> None:
    step = site.slot
    t0 = int((result.start - site.start) // step)
    shares = site.phase_shares
    phase_base = (
        [list(row) for row in site.phase_base_load_kw]
        if site.phase_base_load_kw is not None
        else [[b * s for b in site.base_load_kw] for s in shares]
    )
    limits = (
        [float(site.limit_kw)] * site.n_slots
        if isinstance(site.limit_kw, int | float)
        else list(site.limit_kw)
    )
    net = [0.0] * len(result.slot_starts)
    if battery is not None:
        assert result.battery is not None
        net = [c - d for c, d in zip(result.battery.charge_kw, result.battery.discharge_kw, strict=True)]
    for t, begin in enumerate(result.slot_starts):
        g = t0 + t
        end = result.slot_end(t)
        total = sum(item.power_kw[t] for item in result.sessions) + net[t]
        room = max(limits[g] - site.base_load_kw[g], 0.0)
        assert total <= room + tol * max(1.0, room), f"slot {g}: {total} kW over {room} kW"
        for k in range(3):
            load = (
                sum(item.power_kw[t] * WEIGHTS[item.session.phase][k] for item in result.sessions)
                + net[t] / 3
            )
            room_k = max(limits[g] * shares[k] - phase_base[k][g], 0.0)
            assert load <= room_k + tol * max(1.0, room_k), f"slot {g} L{k + 1}: {load} kW over {room_k} kW"
        for item in result.sessions:
            s = item.session
            power = item.power_kw[t]
            assert -tol <= power <= s.max_power_kw + tol
            if min(end, s.departure) <= max(begin, s.arrival):
                assert power == 0.0, f"{s.session_id} charges outside its window in slot {g}"
    for item in result.sessions:
        s = item.session
        got = sum(
            p * max((min(result.slot_end(t), s.departure) - max(b, s.arrival)).total_seconds(), 0.0) / 3600
            for t, (p, b) in enumerate(zip(item.power_kw, result.slot_starts, strict=True))
        )
        assert got == pytest.approx(item.energy_kwh, rel=1e-9, abs=1e-9)
        assert got <= s.remaining_kwh + tol * max(1.0, s.remaining_kwh)
        assert (
            item.served_kwh <= s.energy_kwh + tol * max(1.0, s.energy_kwh) or s.delivered_kwh > s.energy_kwh
        )
    if battery is not None and result.battery is not None:
        level = battery.initial_soc_kwh
        for t, (c, d) in enumerate(zip(result.battery.charge_kw, result.battery.discharge_kw, strict=True)):
            assert 0 <= c <= battery.max_charge_kw + tol and 0 <= d <= battery.max_discharge_kw + tol
            hours = (result.slot_end(t) - result.slot_starts[t]).total_seconds() / 3600
            level += battery.charge_efficiency * c * hours - d * hours / battery.discharge_efficiency
            assert level == pytest.approx(result.battery.soc_kwh[t], abs=1e-6)
            assert battery.min_soc_kwh - 1e-6 <= level <= battery.capacity_kwh + 1e-6


@st.composite
def instances(draw: st.DrawFn) -> tuple[Site, list[ChargingSession], datetime]:
    minutes = draw(st.sampled_from([15, 30, 60]))
    n = draw(st.integers(1, 8))
    floats = st.floats(allow_nan=False, allow_infinity=False)
    limit = draw(floats.filter(lambda v: True).map(abs).map(lambda v: 5 + v % 55))
    base = [draw(st.floats(0, 70)) for _ in range(n)]
    phase_base = None
    if draw(st.booleans()):
        split = [draw(st.floats(0.05, 1)) for _ in range(3)]
        phase_base = [[b * w / sum(split) for b in base] for w in split]
    site = Site(
        start=T0,
        slot=timedelta(minutes=minutes),
        limit_kw=limit,
        base_load_kw=base,
        phase_base_load_kw=phase_base,
    )
    span = n * minutes
    sessions = []
    for i in range(draw(st.integers(0, 7))):
        arrive = draw(st.integers(-60, span))
        stay = draw(st.integers(1, span + 60))
        kwh = draw(st.floats(0, 60))
        sessions.append(
            ChargingSession(
                session_id=f"c{i}",
                arrival=T0 + timedelta(minutes=arrive),
                departure=T0 + timedelta(minutes=arrive + stay),
                energy_kwh=kwh,
                max_power_kw=draw(st.floats(0, 22)),
                phase=draw(st.sampled_from([None, "L1", "L2", "L3", "L1L2L3"])),
                delivered_kwh=draw(st.floats(0, 1)) * kwh,
            )
        )
    now = T0 + timedelta(seconds=draw(st.integers(0, span * 60 - 1)))
    return site, sessions, now


PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(instances())
def test_lp_plan_never_breaks_a_limit_a_window_a_max_power_or_a_request(
    case: tuple[Site, list[ChargingSession], datetime],
) -> None:
    site, sessions, now = case
    for mode in ("weighted", "staged", "none"):
        result = plan(now=now, sessions=sessions, site=site, fairness=mode)
        assert result.status == "optimal"
        assert_within_limits(result, site=site, sessions=sessions)


@PROPERTY
@given(instances())
def test_edf_and_round_robin_never_break_a_limit_a_window_a_max_power_or_a_request(
    case: tuple[Site, list[ChargingSession], datetime],
) -> None:
    site, sessions, now = case
    assert_within_limits(plan_edf(now=now, sessions=sessions, site=site), site=site, sessions=sessions)
    assert_within_limits(
        plan_round_robin(now=now, sessions=sessions, site=site), site=site, sessions=sessions
    )


@PROPERTY
@given(instances(), st.floats(1, 200), st.floats(0, 1), st.floats(0.5, 1))
def test_joint_plan_with_a_battery_keeps_limits_and_state_of_charge_bounds(
    case: tuple[Site, list[ChargingSession], datetime], capacity: float, level: float, efficiency: float
) -> None:
    site, sessions, now = case
    battery = Battery(
        capacity_kwh=capacity,
        max_charge_kw=capacity / 2,
        max_discharge_kw=capacity / 3,
        initial_soc_kwh=capacity * (0.1 + 0.9 * level),
        min_soc_kwh=capacity * 0.1,
        charge_efficiency=efficiency,
        discharge_efficiency=efficiency,
    )
    result = plan(now=now, sessions=sessions, site=site, battery=battery)
    assert_within_limits(result, site=site, sessions=sessions, battery=battery)
    without = plan(now=now, sessions=sessions, site=site)
    # the battery only adds room: never less EV energy than without it
    assert result.objective_kwh >= without.objective_kwh - 1e-5 * max(1.0, without.objective_kwh)


@PROPERTY
@given(instances())
def test_weighted_single_lp_gives_up_at_most_its_stated_bound_of_energy_against_the_staged_solve(
    case: tuple[Site, list[ChargingSession], datetime],
) -> None:
    site, sessions, now = case
    staged = plan(now=now, sessions=sessions, site=site, fairness="staged")
    weighted = plan(now=now, sessions=sessions, site=site, fairness="weighted")
    attainable = sum(min(s.remaining_kwh, s.max_power_kw * 24 * 4) for s in sessions)
    assert weighted.objective_kwh >= staged.objective_kwh - 3e-3 * attainable - 1e-6


# --------------------------------------------------------------------------------------------------
# Hand-checked optima.


@pytest.mark.parametrize("mode", MODES)
def test_two_cars_share_a_binding_slot_limit_equally(mode: Fairness) -> None:
    # One hour, 10 kW free; both ask 7 kWh at up to 7 kW. Most energy: 10 kWh (the limit binds).
    # Max-min: shares x/7 and (10 - x)/7 are equal at x = 5.
    result = plan(
        now=T0,
        sessions=[car("a", kwh=7, kw=7), car("b", kwh=7, kw=7)],
        site=hourly_site(10, [0]),
        fairness=mode,
    )
    assert result.objective_kwh == pytest.approx(10, abs=1e-6)
    assert energies(result) == pytest.approx({"a": 5, "b": 5}, abs=1e-5)
    assert result.session("a").shortfall_kwh == pytest.approx(2, abs=1e-5)
    assert result.session("a").fraction_served == pytest.approx(5 / 7, abs=1e-6)
    assert result.min_share == pytest.approx(5 / 7, abs=1e-6)
    assert result.ev_load_kw == pytest.approx((10,), abs=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_car_leaving_early_gets_the_shared_slot_so_both_are_served_in_full(mode: Fairness) -> None:
    # Two hours, 10 kW free in each. "a" leaves after the first hour, "b" stays both; each asks
    # 10 kWh at up to 10 kW. Only a = 10 kW in hour 1 and b = 10 kW in hour 2 serves 20 kWh.
    result = plan(
        now=T0,
        sessions=[car("a", leave=1, kwh=10, kw=10), car("b", leave=2, kwh=10, kw=10)],
        site=hourly_site(10, [0, 0]),
        fairness=mode,
    )
    assert result.objective_kwh == pytest.approx(20, abs=1e-5)
    assert result.session("a").power_kw == pytest.approx((10, 0), abs=1e-5)
    assert result.session("b").power_kw == pytest.approx((0, 10), abs=1e-5)
    assert result.min_share == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_a_phase_limit_binds_for_single_phase_cars(mode: Fairness) -> None:
    # 30 kW transformer, 10 kW per phase, no base load. Three single-phase cars on L1 (7 kW, 7 kWh)
    # share L1's 10 kW: 10/3 each. A fourth on L2 takes its 7 kW. Total 17 kWh (the total 30 kW is
    # not binding).
    sessions = [car(f"l1-{i}", kwh=7, kw=7, phase="L1") for i in range(3)] + [
        car("l2", kwh=7, kw=7, phase="L2")
    ]
    result = plan(now=T0, sessions=sessions, site=hourly_site(30, [0]), fairness=mode)
    assert result.objective_kwh == pytest.approx(17, abs=1e-5)
    assert energies(result) == pytest.approx(
        {"l1-0": 10 / 3, "l1-1": 10 / 3, "l1-2": 10 / 3, "l2": 7}, abs=1e-5
    )


@pytest.mark.parametrize("mode", MODES)
def test_car_of_unknown_phase_counts_on_every_phase_and_energy_comes_before_its_share(mode: Fairness) -> None:
    # 15 kW transformer, 5 kW per phase. A three-phase car V (11 kW, 11 kWh) loads each phase with
    # V/3; a car U of unknown phase (7 kW, 7 kWh) loads every phase with U. Per phase:
    # V/3 + U <= 5. Energy V + U is largest at V = 11, U = 5 - 11/3 = 4/3: 12.333 kWh. Giving U more
    # costs three times as much of V, so the fair share waits until energy is maximal.
    sessions = [car("v", kwh=11, kw=11, phase="L1L2L3"), car("u", kwh=7, kw=7, phase=None)]
    result = plan(now=T0, sessions=sessions, site=hourly_site(15, [0]), fairness=mode)
    assert result.objective_kwh == pytest.approx(11 + 4 / 3, rel=2e-6)  # the staged tolerance is 1e-6
    assert energies(result) == pytest.approx({"v": 11, "u": 4 / 3}, abs=2e-5)
    alone = plan(now=T0, sessions=[car("u", kwh=7, kw=7, phase=None)], site=hourly_site(15, [0]))
    assert alone.objective_kwh == pytest.approx(5, abs=1e-6)  # 5 kW on whichever phase it is


@pytest.mark.parametrize("mode", MODES)
def test_shortfall_is_shared_by_share_of_what_each_car_could_take(mode: Fairness) -> None:
    # One hour, 12 kW free. "slow" can take only 3 kW (asks 10 kWh), "b" and "c" 11 kW (ask 11).
    # Alone they could get 3, 11 and 11 kWh. Max-min over those: 3x + 11x + 11x = 12, x = 0.48,
    # so 1.44, 5.28 and 5.28 kWh. (Over the requests, "slow" would hold everyone near 12/31.)
    sessions = [car("slow", kwh=10, kw=3), car("b", kwh=11, kw=11), car("c", kwh=11, kw=11)]
    result = plan(now=T0, sessions=sessions, site=hourly_site(12, [0]), fairness=mode)
    assert result.objective_kwh == pytest.approx(12, abs=1e-5)
    assert energies(result) == pytest.approx({"slow": 1.44, "b": 5.28, "c": 5.28}, abs=1e-4)
    assert result.min_share == pytest.approx(0.48, abs=1e-5)


def test_car_arriving_mid_slot_gets_the_energy_of_the_part_it_is_there() -> None:
    # Slots of an hour, 10 kW free. The car arrives at 08:30 and leaves at 10:00, asking 20 kWh at
    # up to 10 kW: 5 kWh in the first slot (half of it), 10 in the second; 15 kWh in all.
    result = plan(
        now=T0, sessions=[car("a", arrive=0.5, leave=2, kwh=20, kw=10)], site=hourly_site(10, [0, 0])
    )
    assert result.session("a").power_kw == pytest.approx((10, 10), abs=1e-6)
    assert result.objective_kwh == pytest.approx(15, abs=1e-6)
    assert result.session("a").shortfall_kwh == pytest.approx(5, abs=1e-6)


def test_energy_already_delivered_counts_towards_the_request_and_the_share() -> None:
    # One hour, 8 kW free. Both ask 10 kWh at up to 11 kW; "a" has had 6 already, so it needs 4.
    # Attainable (delivered + what it could get alone): a 6 + 4 = 10, b 8. With x kWh to a and
    # 8 - x to b, the shares (6 + x)/10 and (8 - x)/8 are equal when 48 + 8x = 80 - 10x: x = 16/9.
    sessions = [car("a", kwh=10, kw=11, delivered=6), car("b", kwh=10, kw=11)]
    result = plan(now=T0, sessions=sessions, site=hourly_site(8, [0]), fairness="staged")
    assert result.session("a").energy_kwh == pytest.approx(16 / 9, abs=1e-5)
    assert result.session("a").served_kwh == pytest.approx(6 + 16 / 9, abs=1e-5)
    assert result.session("b").energy_kwh == pytest.approx(8 - 16 / 9, abs=1e-5)


def test_weighted_and_staged_agree_on_a_seeded_scarce_night() -> None:
    site, sessions = seeded_night(cars=30, seed=3, limit=150)
    staged = plan(now=site.start, sessions=sessions, site=site, fairness="staged")
    weighted = plan(now=site.start, sessions=sessions, site=site, fairness="weighted")
    assert staged.objective_kwh < sum(s.energy_kwh for s in sessions)  # a real shortfall
    assert weighted.objective_kwh == pytest.approx(staged.objective_kwh, rel=1e-5)
    assert weighted.min_share == pytest.approx(staged.min_share, abs=5e-3)


def test_early_slots_are_preferred_when_capacity_is_plentiful() -> None:
    # Four hours of 20 kW free, one car asking 10 kWh at 10 kW: it is done in the first hour.
    result = plan(now=T0, sessions=[car("a", leave=4, kwh=10, kw=10)], site=hourly_site(20, [0] * 4))
    assert result.session("a").power_kw == pytest.approx((10, 0, 0, 0), abs=1e-6)


# --------------------------------------------------------------------------------------------------
# Base load above the limit, and bad input.


def test_slot_whose_base_load_is_over_the_limit_gets_no_charging_and_is_listed() -> None:
    site = hourly_site(10, [4, 12, 0])
    result = plan(now=T0, sessions=[car("a", leave=3, kwh=30, kw=10)], site=site)
    assert result.session("a").power_kw == pytest.approx((6, 0, 10), abs=1e-6)
    assert result.overloaded_slots == (T0 + HOUR,)
    with pytest.raises(Invalid, match=r"slot 1 \(2025-03-03T09:00:00\+00:00\): the base load 12.000 kW"):
        plan(now=T0, sessions=[], site=site, on_overload="refuse")


def test_phase_whose_base_load_is_over_its_share_is_refused_by_name() -> None:
    site = Site(start=T0, slot=HOUR, limit_kw=30, base_load_kw=[12], phase_base_load_kw=[[11], [1], [0]])
    with pytest.raises(
        Invalid, match=r"base load on L1 11\.000 kW is above its share of the limit 10\.000 kW"
    ):
        plan(now=T0, sessions=[], site=site, on_overload="refuse")
    sessions = [
        car("l2", kwh=5, kw=5, phase="L2"),
        car("3p", kwh=5, kw=5),
        car("unknown", kwh=5, kw=5, phase=None),
    ]
    result = plan(now=T0, sessions=sessions, site=site)
    # L1 is closed: only the car that does not load L1 charges
    assert energies(result) == pytest.approx({"l2": 5, "3p": 0, "unknown": 0}, abs=1e-6)
    assert result.overloaded_slots == (T0,)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: car("x", arrive=2, leave=1, kwh=1, kw=1), "session 'x': departure .* is not after arrival"),
        (lambda: car("x", kwh=-1, kw=1), "session 'x': energy_kwh is -1; it must be 0.0 or more"),
        (lambda: car("x", kwh=math.nan, kw=1), "session 'x': energy_kwh is nan; it must be a finite number"),
        (lambda: car("x", kwh=1, kw=math.inf), "session 'x': max_power_kw is inf"),
        (lambda: car("x", kwh=1, kw=1, phase="L4"), "session 'x': phase 'L4' is not one of"),  # type: ignore[arg-type]
        (
            lambda: ChargingSession("x", datetime(2025, 1, 1), datetime(2025, 1, 2), 1, 1),
            "session 'x': arrival .* has no timezone",
        ),
        (lambda: hourly_site(10, [1, math.nan]), "site: base_load_kw slot 1 is nan"),
        (lambda: hourly_site(-1, [1]), "site: limit_kw is -1"),
        (
            lambda: Site(
                start=T0, slot=HOUR, limit_kw=10, base_load_kw=[3], phase_base_load_kw=[[1], [1], [0]]
            ),
            "site: slot 0: the phase base loads add up to 2.000 kW but base_load_kw is 3.000 kW",
        ),
        (
            lambda: Battery(capacity_kwh=10, max_charge_kw=5, max_discharge_kw=5, initial_soc_kwh=11),
            r"battery: initial_soc_kwh 11 is outside \[0.0, 10\]",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(make: Any, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        make()


def test_plan_refuses_duplicate_sessions_and_a_now_outside_the_horizon() -> None:
    site = hourly_site(10, [0, 0])
    with pytest.raises(Invalid, match="session 'a' is given twice"):
        plan(now=T0, sessions=[car("a", kwh=1, kw=1), car("a", kwh=1, kw=1)], site=site)
    with pytest.raises(Invalid, match="now 2025-03-03T10:00:00\\+00:00 is outside the site's horizon"):
        plan(now=T0 + 2 * HOUR, sessions=[], site=site)
    with pytest.raises(NotFound):
        plan(now=T0, sessions=[], site=site).session("nobody")
    with pytest.raises(Invalid, match="a battery is planned by the LP only"):
        Scheduler(site=site, policy="edf", battery=Battery(10, 1, 1, 5))


# --------------------------------------------------------------------------------------------------
# The battery.


def test_battery_flattens_a_two_slot_peak_to_the_hand_computed_level() -> None:
    # Base 10 then 30 kW, a lossless 20 kWh battery half full. Equal imports P in both hours need
    # charging P - 10, then discharging 30 - P, with 10 + (P - 10) - (30 - P) >= 0: P = 15.
    site = hourly_site(100, [10, 30])
    lossless = Battery(20, 50, 50, 10, charge_efficiency=1, discharge_efficiency=1)
    result = plan(now=T0, sessions=[], site=site, battery=lossless)
    assert result.battery is not None
    assert result.battery.peak_kw == pytest.approx(15, abs=1e-4)
    assert result.battery.peak_without_battery_kw == pytest.approx(30)
    assert result.battery.charge_kw == pytest.approx((5, 0), abs=1e-4)
    assert result.battery.soc_kwh == pytest.approx((15, 0), abs=1e-4)
    assert result.grid_load_kw == pytest.approx((15, 15), abs=1e-4)
    assert_within_limits(result, site=site, sessions=[], battery=lossless)


@pytest.mark.parametrize(
    ("battery", "peak"),
    [
        # a floor of 5 kWh: 5 + (P - 10) - (30 - P) >= 0, P = 17.5
        (Battery(20, 50, 50, 10, min_soc_kwh=5, charge_efficiency=1, discharge_efficiency=1), 17.5),
        # 90 % each way: 10 + 0.9 (P - 10) - (30 - P) / 0.9 >= 0, 1.81 P = 29.1
        (Battery(20, 50, 50, 10, charge_efficiency=0.9, discharge_efficiency=0.9), 29.1 / 1.81),
        # discharge limited to 8 kW: P = 22 (and charging beforehand is useless)
        (Battery(20, 50, 8, 10, charge_efficiency=1, discharge_efficiency=1), 22),
    ],
)
def test_battery_peak_respects_its_floor_efficiency_and_power(battery: Battery, peak: float) -> None:
    site = hourly_site(100, [10, 30])
    result = plan(now=T0, sessions=[], site=site, battery=battery)
    assert result.battery is not None
    assert result.battery.peak_kw == pytest.approx(peak, abs=1e-3)
    assert min(result.battery.soc_kwh) >= battery.min_soc_kwh - 1e-9
    assert_within_limits(result, site=site, sessions=[], battery=battery)


def test_battery_lets_more_ev_energy_through_under_the_transformer_limit() -> None:
    # 10 kW free for an hour, a car asking 15 kWh at 20 kW. Without the battery: 10 kWh. A full
    # 10 kWh battery discharging 5 kW makes room for the rest: 15 kWh, within the limit.
    site = hourly_site(10, [0])
    battery = Battery(10, 10, 10, 10, charge_efficiency=1, discharge_efficiency=1)
    sessions = [car("a", kwh=15, kw=20)]
    assert plan(now=T0, sessions=sessions, site=site).objective_kwh == pytest.approx(10, abs=1e-6)
    result = plan(now=T0, sessions=sessions, site=site, battery=battery)
    assert result.objective_kwh == pytest.approx(15, abs=1e-4)
    assert result.battery is not None
    assert result.grid_load_kw[0] <= 10 + 1e-6
    assert_within_limits(result, site=site, sessions=sessions, battery=battery)


def test_battery_final_state_of_charge_that_cannot_be_reached_is_refused() -> None:
    site = hourly_site(10, [10])  # no headroom to charge
    battery = Battery(10, 5, 5, 2, final_soc_kwh=8)
    with pytest.raises(Invalid, match="final_soc_kwh 8 cannot be reached"):
        plan(now=T0, sessions=[], site=site, battery=battery)


# --------------------------------------------------------------------------------------------------
# Baselines.


def test_edf_serves_the_earliest_departure_first_and_round_robin_shares_equally() -> None:
    # One hour, 10 kW free; "late" leaves at 10:00, "early" at 09:00; both ask 10 kWh at 8 kW.
    sessions = [car("late", leave=2, kwh=10, kw=8), car("early", leave=1, kwh=10, kw=8)]
    site = hourly_site(10, [0, 10])
    edf = plan_edf(now=T0, sessions=sessions, site=site)
    assert energies(edf) == pytest.approx({"late": 2, "early": 8})
    rr = plan_round_robin(now=T0, sessions=sessions, site=site)
    assert energies(rr) == pytest.approx({"late": 5, "early": 5})
    assert edf.status == rr.status == "heuristic"


def test_round_robin_gives_a_capped_car_its_cap_and_the_rest_to_the_others() -> None:
    # 12 kW free: a 2 kW car gets 2, the other two share 10.
    sessions = [car("small", kwh=5, kw=2), car("b", kwh=20, kw=11), car("c", kwh=20, kw=11)]
    rr = plan_round_robin(now=T0, sessions=sessions, site=hourly_site(12, [0]))
    assert energies(rr) == pytest.approx({"small": 2, "b": 5, "c": 5})


# --------------------------------------------------------------------------------------------------
# Online re-planning.


def seeded_night(*, cars: int, seed: int, limit: float) -> tuple[Site, list[ChargingSession]]:
    """An evening-to-morning trace in 15-minute slots with a base-load bump at 19:00."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    slot = timedelta(minutes=15)
    base = [limit * (0.85 if 8 <= t < 20 else 0.35) * rng.uniform(0.95, 1.05) for t in range(64)]
    site = Site(start=start, slot=slot, limit_kw=limit, base_load_kw=base)
    sessions = []
    for i in range(cars):
        arrive = start + timedelta(minutes=rng.uniform(0, 240))
        phase: Phase | None = rng.choice(["L1L2L3", "L1L2L3", "L1L2L3", "L1", "L2", "L3", None])
        sessions.append(
            ChargingSession(
                session_id=f"ev{i}",
                arrival=arrive,
                departure=start + timedelta(hours=rng.uniform(10, 16)),
                energy_kwh=rng.uniform(10, 60),
                max_power_kw=3.7 if phase in ("L1", "L2", "L3", None) else rng.uniform(7, 11),
                phase=phase,
            )
        )
    return site, sessions


def test_online_replanning_delivers_at_least_98_percent_of_the_offline_optimum() -> None:
    site, sessions = seeded_night(cars=30, seed=1, limit=160)
    offline = plan(now=site.start, sessions=sessions, site=site)
    assert offline.objective_kwh < 0.9 * sum(s.energy_kwh for s in sessions)  # capacity is scarce
    online = simulate_online(sessions=sessions, site=site)
    assert online.replans >= len(sessions)  # at least one plan per arrival
    assert online.energy_kwh >= 0.98 * offline.objective_kwh
    assert online.energy_kwh <= offline.objective_kwh * (1 + 1e-6) + 1e-6  # offline is an upper bound
    for s, served in zip(sessions, online.served_kwh, strict=True):
        assert served <= s.energy_kwh + 1e-6


def test_online_battery_state_is_carried_between_plans_and_stays_in_bounds() -> None:
    site, sessions = seeded_night(cars=8, seed=5, limit=60)
    battery = Battery(40, 20, 20, 20, min_soc_kwh=4)
    online = simulate_online(sessions=sessions, site=site, battery=battery)
    assert online.final_soc_kwh is not None
    assert battery.min_soc_kwh - 1e-6 <= online.final_soc_kwh <= battery.capacity_kwh + 1e-6
    without = simulate_online(sessions=sessions, site=site)
    assert online.energy_kwh >= without.energy_kwh - 1e-3


def test_scheduler_replans_from_now_with_the_energy_delivered_so_far() -> None:
    site = hourly_site(10, [0, 0, 0])
    scheduler = Scheduler(site=site)
    first = scheduler.plan(now=T0, sessions=[car("a", leave=3, kwh=12, kw=10)])
    assert first.session("a").power_kw == pytest.approx((10, 2, 0), abs=1e-6)
    # a second car arrives at 08:30; "a" has had 5 kWh
    now = T0 + 0.5 * HOUR
    second = scheduler.plan(
        now=now,
        sessions=[
            car("a", leave=3, kwh=12, kw=10, delivered=5),
            car("b", arrive=0.5, leave=2, kwh=10, kw=10),
        ],
    )
    assert second.start == now and second.slot_starts[1] == T0 + HOUR
    assert second.session("a").served_kwh <= 12 + 1e-9
    assert second.objective_kwh == pytest.approx(7 + 10, abs=1e-5)  # both served in full


# --------------------------------------------------------------------------------------------------
# OCPP 1.6 export.

# From OCPP 1.6 edition 2, section 6.43, schema urn:OCPP:1.6:2019:12:SetChargingProfileRequest
# (recurrencyKind, validFrom and validTo omitted: an Absolute TxProfile does not use them).
SET_CHARGING_PROFILE_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {
        "connectorId": {"type": "integer"},
        "csChargingProfiles": {
            "type": "object",
            "properties": {
                "chargingProfileId": {"type": "integer"},
                "transactionId": {"type": "integer"},
                "stackLevel": {"type": "integer"},
                "chargingProfilePurpose": {
                    "type": "string",
                    "enum": ["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"],
                },
                "chargingProfileKind": {"type": "string", "enum": ["Absolute", "Recurring", "Relative"]},
                "chargingSchedule": {
                    "type": "object",
                    "properties": {
                        "duration": {"type": "integer"},
                        "startSchedule": {"type": "string", "format": "date-time"},
                        "chargingRateUnit": {"type": "string", "enum": ["A", "W"]},
                        "chargingSchedulePeriod": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "startPeriod": {"type": "integer"},
                                    "limit": {"type": "number", "multipleOf": 0.1},
                                    "numberPhases": {"type": "integer"},
                                },
                                "additionalProperties": False,
                                "required": ["startPeriod", "limit"],
                            },
                        },
                        "minChargingRate": {"type": "number", "multipleOf": 0.1},
                    },
                    "additionalProperties": False,
                    "required": ["chargingRateUnit", "chargingSchedulePeriod"],
                },
            },
            "additionalProperties": False,
            "required": [
                "chargingProfileId",
                "stackLevel",
                "chargingProfilePurpose",
                "chargingProfileKind",
                "chargingSchedule",
            ],
        },
    },
    "additionalProperties": False,
    "required": ["connectorId", "csChargingProfiles"],
}
VALIDATOR = jsonschema_rs.Draft4Validator(SET_CHARGING_PROFILE_SCHEMA, validate_formats=True)


def test_ocpp_profile_has_merged_periods_in_watts_from_the_arrival() -> None:
    # Quarter-hour slots, 22 kW transformer: a single-phase car on L1 may take 22/3 kW. It arrives
    # at 08:07 asking 5 kWh: 7.333 kW for 08:07-08:45 (4.644 kWh), 0.356 kWh in 08:45-09:00, then 0.
    site = Site(start=T0, slot=timedelta(minutes=15), limit_kw=22, base_load_kw=[0] * 8)
    sessions = [car("a", arrive=7 / 60, leave=100 / 60, kwh=5, kw=11, phase="L1")]
    result = plan(now=T0, sessions=sessions, site=site)
    payload = set_charging_profile(
        result, session_id="a", connector_id=2, transaction_id=77, charging_profile_id=9
    )
    VALIDATOR.validate(payload)
    profile = payload["csChargingProfiles"]
    assert payload["connectorId"] == 2
    assert profile["transactionId"] == 77 and profile["chargingProfileId"] == 9 and profile["stackLevel"] == 0
    assert (profile["chargingProfilePurpose"], profile["chargingProfileKind"]) == ("TxProfile", "Absolute")
    schedule = profile["chargingSchedule"]
    assert schedule["startSchedule"] == "2025-03-03T08:07:00+00:00"
    assert datetime.fromisoformat(schedule["startSchedule"]).utcoffset() == timedelta(0)
    assert schedule["duration"] == 93 * 60
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 7333.0, "numberPhases": 1},  # 08:07-08:45, three slots merged
        {"startPeriod": 38 * 60, "limit": 1422.0, "numberPhases": 1},  # 0.356 kWh in 15 min
        {"startPeriod": 53 * 60, "limit": 0.0, "numberPhases": 1},
    ]


def test_ocpp_profile_in_amperes_with_local_offset_and_minimum_rate() -> None:
    site = hourly_site(33, [0, 0])
    sessions = [
        car("a", leave=2, kwh=30, kw=11, phase="L1L2L3"),
        car("b", leave=2, kwh=30, kw=11, phase=None),
    ]
    result = plan(now=T0, sessions=sessions, site=site)
    shanghai = datetime.fromisoformat("2025-01-01T00:00:00+08:00").tzinfo
    assert shanghai is not None
    payload = set_charging_profile(
        result,
        session_id="a",
        connector_id=1,
        transaction_id=1,
        charging_profile_id=1,
        stack_level=2,
        charging_rate_unit="A",
        min_charging_rate=6.04,
        timezone=shanghai,
    )
    VALIDATOR.validate(payload)
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    assert schedule["startSchedule"] == "2025-03-03T16:00:00+08:00"
    assert schedule["minChargingRate"] == 6.0
    power = result.session("a").power_kw[0]
    first = schedule["chargingSchedulePeriod"][0]
    assert first["numberPhases"] == 3
    assert first["limit"] == math.floor(power * 1000 / (230 * 3) * 10) / 10
    unknown = set_charging_profile(
        result,
        session_id="b",
        connector_id=2,
        transaction_id=2,
        charging_profile_id=2,
        charging_rate_unit="A",
    )
    # unknown wiring: 3 phases, so the current never gives more power than planned
    assert unknown["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] == 3


def test_ocpp_profile_refuses_a_whole_charge_point_connector_and_unknown_sessions() -> None:
    result = plan(now=T0, sessions=[car("a", kwh=1, kw=1)], site=hourly_site(10, [0]))
    with pytest.raises(Invalid, match="connector_id 0 is the whole charge point"):
        set_charging_profile(result, session_id="a", connector_id=0, transaction_id=1, charging_profile_id=1)
    with pytest.raises(NotFound, match="session 'zz' is not in this plan"):
        set_charging_profile(result, session_id="zz", connector_id=1, transaction_id=1, charging_profile_id=1)

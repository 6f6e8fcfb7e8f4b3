"""Charging benchmark: the LP scheduler on a night of a residential community's car park.

The trace (seeded): a transformer of ``--kva`` (power factor 0.95), 96 slots of 15 min from 16:00
(Asia/Shanghai), an evening base load curve that leaves little headroom at the 19:00-21:00 peak
(94 % of the transformer at 20:00, 27 % at 03:00), 36/33/31 % on L1/L2/L3; N cars arriving
17:00-21:00 and leaving 06:30-08:30 the next morning, each asking 10-60 kWh. Three cars in four
charge on three phases at 7-11 kW; the rest on one phase at 3.7 kW (L1, L2 or L3, a fifth of them
of unknown phase). Per transformer size it measures:

1. the offline plan (all arrivals known) over the whole night, median and range of ``--runs``:
   model build and solve times for the three fairness modes (one weighted LP, the two-stage
   solve, energy only), with the earliest-deadline-first heuristic on the same cars as baseline;
2. the online runs (plan again at every arrival and departure, knowing only the cars present) of
   the LP, earliest-deadline-first and round robin: energy as a share of the offline optimum and of
   the requests, the least fraction of its request any car gets, Jain's index of those fractions;
3. the same night with a 500 kWh / 250 kW community battery: EV energy and the grid peak.

    .venv/bin/python bench/charging_bench.py [--cars 200] [--runs 5] [--seed 7] [--kva 630 1000 1250]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from zhishe.energy.battery import Battery
from zhishe.energy.charging import (
    ChargingPlan,
    ChargingSession,
    Fairness,
    OnlineResult,
    Phase,
    Site,
    plan,
    plan_edf,
    simulate_online,
)

TZ = ZoneInfo("Asia/Shanghai")
# The community's base load by local hour, from 16:00, as a share of the transformer's kW: little
# headroom at the 19:00-21:00 peak, most of it from midnight to 06:00.
HOURLY_BASE = {
    16: 0.42, 17: 0.55, 18: 0.75, 19: 0.90, 20: 0.94, 21: 0.90, 22: 0.75, 23: 0.57, 0: 0.42, 1: 0.33,
    2: 0.29, 3: 0.27, 4: 0.27, 5: 0.30, 6: 0.40, 7: 0.55, 8: 0.58, 9: 0.50, 10: 0.47, 11: 0.48,
    12: 0.50, 13: 0.47, 14: 0.45, 15: 0.45,
}  # fmt: skip
POWER_FACTOR = 0.95


def make_night(cars: int, seed: int, kva: float) -> tuple[Site, list[ChargingSession]]:
    """The site and the cars of one seeded night."""
    rng = random.Random(seed)
    limit = kva * POWER_FACTOR
    start = datetime(2025, 3, 3, 16, 0, tzinfo=TZ)
    slot = timedelta(minutes=15)
    base = []
    for t in range(96):
        local = start + t * slot
        hour, frac = local.hour, local.minute / 60
        here, after = HOURLY_BASE[hour], HOURLY_BASE[(hour + 1) % 24]
        base.append(limit * (here + (after - here) * frac) * rng.uniform(0.97, 1.03))
    shares = (0.36, 0.33, 0.31)
    site = Site(
        start=start,
        slot=slot,
        limit_kw=limit,
        base_load_kw=base,
        phase_base_load_kw=[[b * s for b in base] for s in shares],
    )
    sessions = []
    for i in range(cars):
        arrival = start + timedelta(minutes=60 + rng.uniform(0, 240))
        departure = start + timedelta(hours=14.5) + timedelta(minutes=rng.uniform(0, 120))
        phase: Phase | None
        if rng.random() < 0.75:
            power, phase = rng.uniform(7, 11), "L1L2L3"
        else:
            power = 3.7
            phase = None if rng.random() < 0.2 else rng.choice(("L1", "L2", "L3"))
        sessions.append(
            ChargingSession(
                session_id=f"ev{i:03d}",
                arrival=arrival,
                departure=departure,
                energy_kwh=round(rng.uniform(10, 60), 1),
                max_power_kw=round(power, 1),
                phase=phase,
            )
        )
    return site, sessions


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one gets everything."""
    array = np.asarray(values)
    return float(array.sum() ** 2 / (array.size * (array**2).sum())) if array.size and array.any() else 1.0


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f} ({min(values):.3f}-{max(values):.3f})"


def run_site(kva: float, args: argparse.Namespace) -> None:
    site, sessions = make_night(args.cars, args.seed, kva)
    requested = sum(s.energy_kwh for s in sessions)
    headroom = [kva * POWER_FACTOR - b for b in site.base_load_kw]
    print(
        f"\n=== {kva:g} kVA ({kva * POWER_FACTOR:.1f} kW): {args.cars} cars x {site.n_slots} slots, "
        f"{requested:,.0f} kWh asked; headroom {min(headroom):.0f}-{max(headroom):.0f} kW"
    )
    modes: tuple[Fairness, ...] = ("weighted", "staged", "none")
    builds: dict[str, list[float]] = {m: [] for m in modes}
    solves: dict[str, list[float]] = {m: [] for m in modes}
    plans: dict[str, ChargingPlan] = {}
    edf_times: list[float] = []
    for _ in range(args.runs):
        for mode in modes:
            result = plan(now=site.start, sessions=sessions, site=site, fairness=mode)
            builds[mode].append(result.build_seconds)
            solves[mode].append(result.solve_seconds)
            plans[mode] = result
        started = time.perf_counter()
        plan_edf(now=site.start, sessions=sessions, site=site)
        edf_times.append(time.perf_counter() - started)
    step = site.slot.total_seconds()
    pairs = sum(
        math.ceil((min(s.departure, site.end) - site.start).total_seconds() / step)
        - math.floor((max(s.arrival, site.start) - site.start).total_seconds() / step)
        for s in sessions
    )
    print(
        f"1. Offline plan, median (range) of {args.runs} runs, seconds; {pairs:,} (car, slot) power variables"
    )
    print(f"   {'':44} {'build':>8} {'solve':>22} {'energy kWh':>11} {'min share':>9}")
    labels = {
        "weighted": "LP, energy + fairness in one LP (default)",
        "staged": "LP, two stages (energy, then max-min)",
        "none": "LP, energy only",
    }
    for mode in modes:
        result = plans[mode]
        print(
            f"   {labels[mode]:44} {statistics.median(builds[mode]):8.4f} {median_range(solves[mode]):>22} "
            f"{result.objective_kwh:11,.2f} {result.min_share:9.4f}"
        )
    print(f"   {'baseline: earliest deadline first (whole plan)':44} {'':8} {median_range(edf_times):>22}")
    offline = plans["weighted"]

    print("2. Online: plan again at every arrival and departure, knowing only the cars present")
    print(
        f"   {'policy':16} {'energy kWh':>11} {'of offline':>10} {'of asked':>9} {'min frac':>9} {'Jain':>6} "
        f"{'plans':>6} {'median plan s':>14}"
    )
    fractions = [item.fraction_served for item in offline.sessions]
    print(
        f"   {'offline LP':16} {offline.objective_kwh:11,.1f} {1:10.1%} {offline.objective_kwh / requested:9.1%} "
        f"{min(fractions):9.3f} {jain(fractions):6.3f} {1:6d} {statistics.median(solves['weighted']):14.3f}"
    )
    by_kind: dict[str, list[float]] = {}
    for item in offline.sessions:
        phase = item.session.phase
        kind = "unknown phase" if phase is None else "three-phase" if phase == "L1L2L3" else "single-phase"
        by_kind.setdefault(kind, []).append(item.fraction_served)
    print(
        "   offline LP, fraction served by connection: "
        + "; ".join(
            f"{kind} ({len(v)}) median {statistics.median(v):.2f}, min {min(v):.2f}"
            for kind, v in sorted(by_kind.items())
        )
    )
    for policy in ("lp", "edf", "round_robin"):
        online: OnlineResult = simulate_online(sessions=sessions, site=site, policy=policy)
        fractions = list(online.fraction_served)
        print(
            f"   {policy:16} {online.energy_kwh:11,.1f} {online.energy_kwh / offline.objective_kwh:10.1%} "
            f"{online.energy_kwh / requested:9.1%} {min(fractions):9.3f} {jain(fractions):6.3f} "
            f"{online.replans:6d} {statistics.median(online.plan_seconds):14.3f}"
        )

    battery = Battery.with_round_trip(
        capacity_kwh=500,
        max_charge_kw=250,
        max_discharge_kw=250,
        initial_soc_kwh=250,
        round_trip_efficiency=0.9,
    )
    joint = plan(now=site.start, sessions=sessions, site=site, battery=battery)
    assert joint.battery is not None
    print("3. Offline with a 500 kWh / 250 kW battery, half full, 90 % round trip")
    print(
        f"   EV energy {joint.objective_kwh:,.1f} kWh (without battery {offline.objective_kwh:,.1f}); "
        f"grid peak {joint.battery.peak_kw:.1f} kW (limit {kva * POWER_FACTOR:.1f}); "
        f"stages: {', '.join(f'{s.name} {s.seconds:.2f} s' for s in joint.stages)}"
    )
    shaving = plan(now=site.start, sessions=[], site=site, battery=battery)
    assert shaving.battery is not None
    print(
        f"   the same battery shaving the base load alone: peak {shaving.battery.peak_without_battery_kw:.1f} -> "
        f"{shaving.battery.peak_kw:.1f} kW ({shaving.stages[0].seconds:.3f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cars", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kva", type=float, nargs="+", default=[630, 1000, 1250])
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.2f}; seed {args.seed}"
    )
    for kva in args.kva:
        run_site(kva, args)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

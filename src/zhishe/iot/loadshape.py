"""The model of the household simulator (``zhishe.iot.simulate`` re-exports it): the weekly
electricity profile taken from real data, a household's daily routine, the meter values that follow
from them, the faults that can be injected, and ``generate``, which yields the readings. It is pure:
the same arguments always give the same readings, and nothing is sent or stored.

The electricity profile is the real half-hourly demand of England and Wales, summer 2000
(``zhishe.demo.taylor``, 12 weeks): the mean of each of the 336 half hours of the week over the
12 weeks, in the local time of the source (Monday 00:00 first), divided by the overall mean so that
the factors average 1. Between half hours the factor is interpolated linearly from the centre of
one half hour to the next. A household's power is its own mean load times this factor times
multiplicative noise (a log-normal AR(1) process, correlated over about 15 minutes).

The routine is drawn per household (stable traits, from the seed and the household's number) and
per day (the day's plan, from the seed, the household and the date): water use as events of a flow
for a duration, kitchen motion detections, and front-door openings and closings. Times in a plan are
seconds after local midnight; a plan may run past 24 h (a late shower).

Meters report at the end of each interval of ``step`` seconds: power and flow are the means over
the interval, and the energy (kWh) and volume (m³) counters rise by exactly their integral.

Faults (``plan_faults`` draws them from the seed, or they are given): a **leak** (a constant flow
from a time on), a **counter reset** (the energy counter restarts from 0, as after a meter
reboot), an **inactive resident** (no motion, door or water use from a time to the end of that
day). They are reported back by the caller so that detection can be checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock_time
from functools import cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.demo.taylor import read_taylor

__all__ = [
    "METER_STREAMS",
    "SLOTS",
    "DayPlan",
    "Fault",
    "House",
    "SimulatedReading",
    "Traits",
    "generate",
    "load_day",
    "meter_values",
    "new_house",
    "plan_day",
    "plan_faults",
    "profile_at",
    "traits_of",
    "weekly_profile",
]

#: Half hours in a week.
SLOTS = 336
_HALF_HOUR = 1800.0
_WEEK = 7 * 86_400.0
_H = 3600.0
_M = 60.0
#: The source's timestamps are in British time (all of them in summer time).
_SOURCE_TZ = ZoneInfo("Europe/London")
#: Meter values per household and interval: energy, power, volume, flow.
METER_STREAMS = 4
_NOISE_SIGMA = 0.3  # log-sd of the multiplicative noise on power
_NOISE_TAU = 900.0  # its correlation time, seconds
_MONDAY = 4 * 86_400  # 1970-01-05, a Monday, in epoch seconds


@cache
def _profile() -> NDArray[np.float64]:
    sums = np.zeros(SLOTS)
    counts = np.zeros(SLOTS)
    for moment, megawatts in read_taylor():
        local = moment.astimezone(_SOURCE_TZ)
        slot = local.weekday() * 48 + local.hour * 2 + local.minute // 30
        sums[slot] += megawatts
        counts[slot] += 1
    if counts.min() == 0:
        raise RuntimeError("the demand data does not cover every half hour of the week")
    means: NDArray[np.float64] = sums / counts
    profile: NDArray[np.float64] = means / means.mean()
    profile.setflags(write=False)
    return profile


def weekly_profile() -> NDArray[np.float64]:
    """The 336 half-hourly factors of the week (Monday 00:00-00:30 local first), averaging 1."""
    return _profile()


def profile_at(seconds_of_week: NDArray[np.float64]) -> NDArray[np.float64]:
    """The profile factor at local seconds after Monday 00:00, interpolated between half-hour centres."""
    profile = _profile()
    position = (np.asarray(seconds_of_week, dtype=np.float64) % _WEEK - _HALF_HOUR / 2) / _HALF_HOUR
    below = np.floor(position)
    fraction = position - below
    first = below.astype(np.int64) % SLOTS
    result: NDArray[np.float64] = profile[first] * (1 - fraction) + profile[(first + 1) % SLOTS] * fraction
    return result


@dataclass(frozen=True, slots=True)
class Traits:
    """A household's stable habits, drawn once from the seed and its number."""

    index: int
    #: Mean electric load in kW (lognormal around 0.35 kW).
    mean_kw: float
    #: Whether someone leaves for work on weekdays (else someone is at home most of the day).
    works_out: bool
    #: Usual weekday wake-up and bedtime, seconds after local midnight.
    wake: float
    sleep: float
    #: How much later the household gets up at weekends, seconds.
    weekend_shift: float
    #: Seconds between waking and leaving for work, and the usual time back.
    leave_after: float
    back: float
    #: How many people live there (1 to 4): more showers and flushes.
    residents: int
    #: Whether the household showers in the morning (else in the evening).
    morning_shower: bool
    #: The meters' readings when the simulation starts: kWh and m³.
    energy_start: float
    volume_start: float


def traits_of(seed: int, index: int) -> Traits:
    """The habits of household ``index`` under ``seed`` (the same whatever the number of households)."""
    rng = np.random.default_rng([seed, index, 0x7A17])
    works_out = bool(rng.random() < 0.62)
    return Traits(
        index=index,
        mean_kw=float(np.clip(0.35 * math.exp(rng.normal(0.0, 0.45)), 0.08, 2.5)),
        works_out=works_out,
        wake=float(np.clip(rng.normal(6.8 * _H, 35 * _M), 5.25 * _H, 8.5 * _H)),
        sleep=float(np.clip(rng.normal(22.8 * _H, 40 * _M), 21.0 * _H, 24.25 * _H)),
        weekend_shift=float(rng.uniform(50 * _M, 110 * _M)),
        leave_after=float(rng.uniform(45 * _M, 80 * _M)),
        back=float(np.clip(rng.normal(18.2 * _H, 35 * _M), 16.75 * _H, 20.0 * _H)),
        residents=int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1])),
        morning_shower=bool(rng.random() < 0.6),
        energy_start=round(float(rng.uniform(800.0, 25_000.0)), 3),
        volume_start=round(float(rng.uniform(40.0, 1_500.0)), 4),
    )


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a household does on one day, in seconds after local midnight."""

    #: Water use: (start, duration in seconds, flow in L/min), possibly overlapping.
    water: list[tuple[float, float, float]]
    #: Kitchen motion detections (whole seconds, at least a minute apart, as a PIR sensor reports).
    motion: list[float]
    #: Front door: (second, 1.0 opened or 0.0 closed).
    door: list[tuple[float, float]]


def _inside(moment: float, spans: list[tuple[float, float]]) -> bool:
    return any(a <= moment < b for a, b in spans)


def _poisson(rng: np.random.Generator, start: float, end: float, per_minute: float) -> NDArray[np.float64]:
    if end <= start or per_minute <= 0:
        return np.zeros(0)
    return rng.uniform(start, end, int(rng.poisson((end - start) / _M * per_minute)))


def plan_day(traits: Traits, *, seed: int, day: date) -> DayPlan:
    """The plan of one local day; the same seed, household and date always give the same plan."""
    rng = np.random.default_rng([seed, traits.index, day.toordinal()])
    weekend = day.weekday() >= 5
    wake = traits.wake + (traits.weekend_shift if weekend else 0.0) + rng.normal(0, 20 * _M)
    wake = max(wake, 4.75 * _H)
    late = 30 * _M if day.weekday() in (4, 5) else 0.0
    sleep = max(traits.sleep + late + rng.normal(0, 25 * _M), wake + 12 * _H)

    # Times away from home: work on weekdays, errands and outings otherwise.
    out: list[tuple[float, float]] = []
    if traits.works_out and not weekend:
        leave = wake + traits.leave_after + rng.normal(0, 8 * _M)
        back = max(traits.back + rng.normal(0, 30 * _M), leave + 6 * _H)
        out.append((leave, back))
    else:
        if rng.random() < 0.6:
            start = max(rng.uniform(9.0 * _H, 10.5 * _H), wake + 45 * _M)
            out.append((start, start + rng.uniform(40 * _M, 100 * _M)))
        if rng.random() < (0.6 if weekend else 0.5):
            start = rng.uniform(14.0 * _H, 16.0 * _H)
            out.append((start, start + rng.uniform(40 * _M, 180 * _M)))
    door: list[tuple[float, float]] = []
    for a, b in out:
        for moment in (a, b):
            opened = float(round(moment))
            door.append((opened, 1.0))
            door.append((opened + round(rng.uniform(5, 25)), 0.0))

    home = [(wake, sleep)]
    for a, b in out:  # the awake hours at home, with the times out cut away
        home = [piece for x, y in home for piece in ((x, min(y, a)), (max(x, b), y)) if piece[1] > piece[0]]

    # Kitchen activity: breakfast, lunch when at home, dinner, and a little in between.
    first_out = out[0][0] if out else sleep
    dinner = max(18.0 * _H + rng.normal(0, 20 * _M), (out[0][1] + 15 * _M) if traits.works_out and out else 0)
    episodes = [
        (wake + 5 * _M, min(wake + 50 * _M, first_out), 0.5),
        (12.0 * _H + rng.normal(0, 20 * _M), 12.7 * _H + rng.normal(0, 10 * _M), 0.4),
        (dinner, dinner + 75 * _M, 0.45),
        (wake, sleep, 0.06),
    ]
    moments = np.concatenate([_poisson(rng, a, b, rate) for a, b, rate in episodes])
    moments = np.sort(moments[np.any([(moments >= a) & (moments < b) for a, b in home], axis=0)])
    if rng.random() < 0.05:  # a rare night visit to the kitchen
        moments = np.concatenate([[rng.uniform(1.0 * _H, 4.5 * _H)], moments])
    motion: list[float] = []
    for second in np.round(moments).tolist():
        if not motion or second - motion[-1] >= 60:
            motion.append(second)

    # Water: the bathroom in the morning and at night, the kitchen at meals, flushes in between.
    water: list[tuple[float, float, float]] = []

    def flush(at: float) -> None:
        seconds = rng.uniform(50, 90)
        water.append((at, seconds, rng.uniform(4.5, 6.5) / seconds * _M))

    for person in range(traits.residents):
        flush(wake + rng.uniform(1, 8) * _M + person * 12 * _M)
        water.append((wake + rng.uniform(9, 12) * _M + person * 12 * _M, rng.uniform(20, 45), 5.0))
        if rng.random() < 0.8:
            shower_at = (wake + 12 * _M) if traits.morning_shower else (sleep - 100 * _M)
            water.append((shower_at + person * 14 * _M, rng.uniform(5, 12) * _M, rng.uniform(7, 10)))
    water.append((wake + rng.uniform(25, 40) * _M, rng.uniform(30, 60), 6.0))
    if _inside(12.2 * _H, home):
        water.append((12.0 * _H + rng.uniform(0, 20) * _M, rng.uniform(2, 4) * _M, 5.0))
    for _ in range(int(rng.integers(2, 4))):
        water.append((dinner + rng.uniform(0, 40) * _M, rng.uniform(40, 120), 6.0))
    water.append((dinner + rng.uniform(70, 100) * _M, rng.uniform(5, 10) * _M, 5.0))
    if rng.random() < 0.25 + 0.1 * traits.residents:  # a washing machine's fills
        at = rng.uniform(wake + 40 * _M, sleep - 120 * _M)
        for fill in range(3):
            water.append((at + fill * 20 * _M, rng.uniform(60, 100), 10.0))
    for moment in _poisson(rng, wake + 30 * _M, sleep - 30 * _M, traits.residents / 240).tolist():
        flush(moment)
    flush(sleep - rng.uniform(5, 20) * _M)
    if rng.random() < 0.2:
        flush(rng.uniform(1.0 * _H, 5.0 * _H))
    water = sorted(w for w in water if w[0] < wake or _inside(w[0], home))
    return DayPlan(water=water, motion=motion, door=sorted(door))


# --- households while they run ------------------------------------------------------------


@dataclass
class House:
    """A simulated household while it runs: its counters, noise state, planned events and faults.

    Events are in epoch seconds: water as rows (start, end, litres per second), motion as seconds,
    door as rows (second, value). Faults: leaks as (start, end, litres per second), counter resets
    as seconds, quiet (inactive) spans as (start, end).
    """

    traits: Traits
    energy: float  # kWh, unrounded
    litres: float  # the water counter in litres, unrounded
    noise: float  # the log-noise state
    rng: np.random.Generator  # the noise's draws, in order
    water: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    motion: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    door: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    leaks: list[tuple[float, float, float]] = field(default_factory=list)
    resets: list[float] = field(default_factory=list)
    quiet: list[tuple[float, float]] = field(default_factory=list)


def new_house(seed: int, index: int) -> House:
    """Household ``index`` as it starts: its traits, its meters' first readings, its noise state."""
    traits = traits_of(seed, index)
    rng = np.random.default_rng([seed, index, 0x5EED])
    return House(
        traits, traits.energy_start, traits.volume_start * 1000.0, float(rng.normal(0, _NOISE_SIGMA)), rng
    )


def _epoch(plan_seconds: list[float], midnight: datetime) -> NDArray[np.float64]:
    base = midnight.timestamp()
    if (midnight + timedelta(days=1)).timestamp() - base == 86_400:
        return base + np.asarray(plan_seconds, dtype=np.float64)
    return np.asarray([(midnight + timedelta(seconds=s)).timestamp() for s in plan_seconds])  # DST day


def _is_quiet(moment: float, quiet: list[tuple[float, float]]) -> bool:
    return any(a <= moment < b for a, b in quiet)


def load_day(house: House, plan: DayPlan, midnight: datetime, day_start: float) -> None:
    """Load a day's plan into the house, keeping what is left of the day before (a late shower)."""
    water = np.zeros((len(plan.water), 3))
    if plan.water:
        rows = np.asarray(plan.water, dtype=np.float64)
        water[:, 0] = _epoch(list(rows[:, 0]), midnight)
        water[:, 1] = water[:, 0] + rows[:, 1]
        water[:, 2] = rows[:, 2] / 60.0  # litres per second
    motion = _epoch(plan.motion, midnight).round().astype(np.int64)
    door = np.zeros((len(plan.door), 2))
    if plan.door:
        door[:, 0] = _epoch([d[0] for d in plan.door], midnight).round()
        door[:, 1] = [d[1] for d in plan.door]
    if house.quiet:
        water = water[[not _is_quiet(s, house.quiet) for s in water[:, 0]]].reshape(-1, 3)
        motion = motion[[not _is_quiet(float(m), house.quiet) for m in motion]]
        door = door[[not _is_quiet(d, house.quiet) for d in door[:, 0]]].reshape(-1, 2)
    house.water = np.vstack([house.water[house.water[:, 1] > day_start], water])
    house.motion = np.unique(np.concatenate([house.motion[house.motion >= day_start], motion]))
    door = np.vstack([house.door[house.door[:, 0] >= day_start], door])
    _, first = np.unique(door[:, 0], return_index=True)  # sorted, one event per second
    house.door = door[first]


def _utc_offsets(times: NDArray[np.int64], zone: tzinfo, midnight: datetime) -> NDArray[np.int64]:
    first = midnight.utcoffset()
    last = (midnight + timedelta(days=1)).utcoffset()
    if first == last and first is not None:
        return np.full(times.shape, int(first.total_seconds()), dtype=np.int64)
    return np.asarray(
        [int((datetime.fromtimestamp(int(t), UTC).astimezone(zone).utcoffset() or timedelta()).total_seconds()) for t in times],
        dtype=np.int64,
    )  # fmt: skip


def _litres(house: House, times: NDArray[np.int64], step: int) -> NDArray[np.float64] | None:
    """Litres used in each interval (t - step, t] from the water events and any leak (None: none)."""
    low, high = times[0] - step, times[-1]
    events = house.water[(house.water[:, 1] > low) & (house.water[:, 0] < high)]
    if house.leaks:
        events = np.vstack([events, np.asarray(house.leaks)])
    if not len(events):
        return None
    ends = np.minimum(events[:, 1:2], times[None, :])
    starts = np.maximum(events[:, 0:1], (times - step)[None, :])
    result: NDArray[np.float64] = (np.clip(ends - starts, 0, None) * events[:, 2:3]).sum(axis=0)
    return result


def meter_values(
    houses: list[House], times: NDArray[np.int64], step: int, zone: tzinfo, midnight: datetime
) -> NDArray[np.float64]:
    """The meter values of every house at ``times`` (multiples of ``step`` within one local day that
    starts at ``midnight``), advancing the houses' counters: shape (households, 4, len(times)), in
    the order energy, power, volume, flow."""
    count = len(times)
    local = times + _utc_offsets(times, zone, midnight)
    factor = profile_at(((local - _MONDAY) % int(_WEEK)).astype(np.float64))
    phi = math.exp(-step / _NOISE_TAU)
    draws = np.stack([h.rng.standard_normal(count) for h in houses])
    state = np.asarray([h.noise for h in houses])
    noise, _ = lfilter(
        [math.sqrt(1 - phi * phi) * _NOISE_SIGMA], [1.0, -phi], draws, axis=1, zi=(phi * state)[:, None]
    )
    mean_kw = np.asarray([h.traits.mean_kw for h in houses])
    power = np.round(mean_kw[:, None] * factor[None, :] * np.exp(noise - _NOISE_SIGMA**2 / 2), 3)
    energy = np.cumsum(power * (step / 3600.0), axis=1) + np.asarray([h.energy for h in houses])[:, None]
    litres = np.zeros((len(houses), count))
    for i, house in enumerate(houses):
        house.noise = float(noise[i, -1])
        for reset in house.resets:  # the counter restarts from 0 in the interval where the reset falls
            at = int(np.searchsorted(times, reset))
            if at < count and times[at] - step < reset:
                energy[i, at:] = np.concatenate([[0.0], np.cumsum(power[i, at + 1 :] * (step / 3600.0))])
        house.energy = float(energy[i, -1])
        used = _litres(house, times, step)
        if used is not None:
            litres[i] = used
    volume = np.cumsum(litres, axis=1) + np.asarray([h.litres for h in houses])[:, None]
    for i, house in enumerate(houses):
        house.litres = float(volume[i, -1])
    return np.stack(
        [np.round(energy, 3), power, np.round(volume / 1000.0, 4), np.round(litres / (step / 60.0), 2)],
        axis=1,
    )


# --- faults and the generator ---------------------------------------------------------------

#: Stream numbers of ``generate``'s rows: (device kind, datastream key).
_STREAMS = (
    ("electricity_meter", "energy"),
    ("electricity_meter", "power"),
    ("water_meter", "volume"),
    ("water_meter", "flow"),
    ("motion_sensor", "motion"),
    ("door_sensor", "door"),
)
_FAULT_KINDS = ("leak", "counter_reset", "inactive")


class SimulatedReading(NamedTuple):
    """One reading of a simulated household's device."""

    household: int
    device: str
    key: str
    time: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected into one household from ``start`` (until ``end``, or the end of the run)."""

    kind: str
    household: int
    start: datetime
    end: datetime | None = None
    #: The leak's flow in L/min (leaks only).
    flow_lpm: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601."""
        return {
            "kind": self.kind,
            "household": self.household,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            **({"flow_lpm": self.flow_lpm} if self.kind == "leak" else {}),
        }


#: Where in the local day each fault starts (earliest, latest hour after midnight), and the hour
#: until which a run should go on for the fault to be seen whole (a leak through the next night).
_FAULT_WINDOWS = {
    "leak": (21.0, 25.0, 30.0),
    "counter_reset": (10.0, 16.0, 16.0),
    "inactive": (9.0, 13.0, 24.0),
}


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, clock_time(0), tzinfo=zone)


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("the simulation's start and end must be timezone-aware", detail={"field": "start"})
    if end <= start:
        raise Invalid(
            f"the simulation must end after it starts ({start.isoformat()} to {end.isoformat()})",
            detail={"field": "end"},
        )


def plan_faults(
    *,
    households: int,
    start: datetime,
    end: datetime,
    seed: int = 0,
    leaks: int = 0,
    resets: int = 0,
    inactive: int = 0,
    tz: tzinfo | None = None,
) -> list[Fault]:
    """Draw faults from the seed: each in its own household while there are enough, at a time of
    day that fits it (a leak from the late evening, a reset mid-day, inactivity from the morning),
    on a day within [start, end). An inactive resident is one who is usually at home."""
    _check_range(start, end)
    for name, count in (("leaks", leaks), ("resets", resets), ("inactive", inactive)):
        if count < 0:
            raise Invalid(f"the number of {name} cannot be negative", detail={"field": name})
    if households < 1:
        raise Invalid("a simulation needs at least one household", detail={"field": "households"})
    zone = tz or get_settings().tz
    rng = np.random.default_rng([seed, 0xFA])
    order = [int(i) for i in rng.permutation(households)]
    at_home = [i for i in order if not traits_of(seed, i).works_out]
    taken: list[int] = []

    def pick(prefer: list[int]) -> int:
        for i in (*prefer, *order):
            if i not in taken:
                taken.append(i)
                return i
        return order[len(taken) % len(order)]

    faults: list[Fault] = []
    for kind, count in (("leak", leaks), ("counter_reset", resets), ("inactive", inactive)):
        for _ in range(count):
            household = pick(at_home if kind == "inactive" else [])
            moment = _fault_time(kind, rng, start, end, zone)
            if kind == "leak":
                faults.append(Fault(kind, household, moment, None, round(float(rng.uniform(2.0, 6.0)), 2)))
            elif kind == "inactive":
                next_midnight = _midnight(moment.astimezone(zone).date() + timedelta(days=1), zone)
                faults.append(Fault(kind, household, moment, next_midnight.astimezone(UTC)))
            else:
                faults.append(Fault(kind, household, moment))
    return faults


def _fault_time(
    kind: str, rng: np.random.Generator, start: datetime, end: datetime, zone: tzinfo
) -> datetime:
    """A time for the fault, on a day where it is seen whole if there is one, else where it fits."""
    low, high, seen = _FAULT_WINDOWS[kind]
    whole: list[tuple[datetime, datetime]] = []
    spans: list[tuple[datetime, datetime]] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    while (midnight := _midnight(day, zone)) < end:
        a = max(midnight + timedelta(hours=low), start)
        b = min(midnight + timedelta(hours=high), end)
        if b - a >= timedelta(minutes=1):
            spans.append((a, b))
            if midnight + timedelta(hours=low) >= start and midnight + timedelta(hours=seen) <= end:
                whole.append((a, b))
        day += timedelta(days=1)
    if not spans:
        raise Invalid(
            f"a {kind.replace('_', ' ')} starts between {low:g} h and {high:g} h local time, and the "
            f"range {start.isoformat()} to {end.isoformat()} has no such time",
            detail={"field": "faults"},
        )
    choices = whole or spans
    a, b = choices[int(rng.integers(len(choices)))]
    moment = a + (b - a - timedelta(minutes=1)) * float(rng.random())
    return datetime.fromtimestamp(math.ceil(moment.timestamp() / 60) * 60, UTC)


def generate(
    *,
    households: int,
    start: datetime,
    end: datetime,
    seed: int = 0,
    step: int = 60,
    faults: Sequence[Fault] = (),
    tz: tzinfo | None = None,
) -> Iterator[SimulatedReading]:
    """The readings of ``households`` households (numbered from 0) in [start, end), in time order.

    Meters read every ``step`` seconds, at multiples of ``step`` since the epoch; events come when
    they happen (whole seconds). The household's day follows local time in ``tz`` (default: the
    platform's). The same arguments always give the same readings.
    """
    _check_range(start, end)
    if households < 1:
        raise Invalid("a simulation needs at least one household", detail={"field": "households"})
    if not 1 <= step <= 3600:
        raise Invalid(f"the meter step must be 1 to 3600 seconds, not {step}", detail={"field": "step"})
    if seed < 0:
        raise Invalid(f"the seed must be zero or positive, not {seed}", detail={"field": "seed"})
    zone = tz or get_settings().tz
    houses = [new_house(seed, index) for index in range(households)]
    for fault in faults:
        if fault.kind not in _FAULT_KINDS:
            raise Invalid(f"unknown fault kind {fault.kind!r}; use one of {', '.join(_FAULT_KINDS)}")
        if not 0 <= fault.household < households:
            raise Invalid(f"a {fault.kind} fault names household {fault.household}, not simulated")
        house = houses[fault.household]
        begin, finish = fault.start.timestamp(), fault.end.timestamp() if fault.end else math.inf
        if fault.kind == "leak":
            house.leaks.append((begin, finish, fault.flow_lpm / 60.0))
        elif fault.kind == "counter_reset":
            house.resets.append(begin)
        else:
            house.quiet.append((begin, finish))
    first, last = start.timestamp(), end.timestamp()
    span = min(86_400, max(3600, step * 60))
    day = start.astimezone(zone).date()
    while (midnight := _midnight(day, zone)).timestamp() < last:
        day_start, day_end = midnight.timestamp(), _midnight(day + timedelta(days=1), zone).timestamp()
        if day_end > first:
            for house in houses:
                load_day(house, plan_day(house.traits, seed=seed, day=day), midnight, day_start)
            chunk_start = day_start
            while chunk_start < day_end:  # about 60 meter readings per household at a time
                a, b = max(chunk_start, first), min(chunk_start + span, day_end, last)
                if a < b:
                    yield from _chunk(houses, a, b, step, zone, midnight)
                chunk_start += span
        day += timedelta(days=1)


def _chunk(
    houses: list[House], a: float, b: float, step: int, zone: tzinfo, midnight: datetime
) -> Iterator[SimulatedReading]:
    times = np.arange(math.ceil(a / step) * step, math.ceil(b / step) * step, step, dtype=np.int64)
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    if len(times):
        values = meter_values(houses, times, step, zone, midnight)
        shape = (len(houses), METER_STREAMS, len(times))
        parts.append(
            (
                np.broadcast_to(times, shape).ravel(),
                np.broadcast_to(np.arange(len(houses))[:, None, None], shape).ravel(),
                np.broadcast_to(np.arange(METER_STREAMS)[None, :, None], shape).ravel(),
                values.ravel(),
            )
        )
    for i, house in enumerate(houses):
        lo, hi = np.searchsorted(house.motion, [a, b])
        if hi > lo:
            parts.append((house.motion[lo:hi], np.full(hi - lo, i), np.full(hi - lo, 4), np.ones(hi - lo)))
        lo, hi = np.searchsorted(house.door[:, 0], [a, b])
        if hi > lo:
            door = house.door[lo:hi]
            parts.append((door[:, 0].astype(np.int64), np.full(hi - lo, i), np.full(hi - lo, 5), door[:, 1]))
    if not parts:
        return
    moments, who, stream, value = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((stream, who, moments))
    stamps: dict[int, datetime] = {}
    for t, h, s, v in zip(
        moments[order].tolist(),
        who[order].tolist(),
        stream[order].tolist(),
        value[order].tolist(),
        strict=True,
    ):
        stamp = stamps.get(t)
        if stamp is None:
            stamp = stamps[t] = datetime.fromtimestamp(t, UTC)
        device, key = _STREAMS[s]
        yield SimulatedReading(h, device, key, stamp, v)

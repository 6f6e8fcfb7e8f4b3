"""Consumption from cumulative counters (kWh, m³): per-interval deltas and local-time buckets.

A counter datastream behaves like Home Assistant's ``total_increasing``: it rises, but it may
**reset** (a device reboot starts again from 0) or be **swapped** (a new meter starts at any
reading). Readings arrive late, out of order and repeated. ``deltas`` turns readings into the
consumption of each interval between consecutive readings, and ``bucket_energy`` spreads that over
15-minute, hourly or local-day buckets. No interval and no bucket is ever negative.

The rule, applied in time order with a *reference* (the highest reading of the current cycle):

1. Readings are sorted by time; an exact repeat (same time, same value) is dropped. Two different
   values at one time are a conflict: the higher is kept (a counter only rises) and an ``Event``
   says so.
2. A declared swap ``Swap(time, old_final, new_initial)`` applies to the first interval that holds
   it (``previous time < swap time <= reading time``): the interval gets ``old_final - reference``
   (the old meter's last rise, if any) plus the new meter's rise from ``new_initial``; the
   reference becomes ``new_initial``. Declared swaps are exact.
3. A rise ``value - reference >= 0`` is the interval's consumption, unless ``max_rate`` (units per
   hour) is given and the rise is more than ``max_rate`` × the interval's hours: then it is a
   **jump** (most often a swap to a higher reading), the interval counts 0 and the reference
   becomes the new value.
4. A fall of at most ``drop_fraction`` (10 %, as Home Assistant) of the reference is **jitter**: the
   interval counts 0 and the reference stays (so the rise back is not counted twice).
5. A larger fall starts a new cycle. When the new value is small, at most ``drop_fraction`` of the
   old reference (and at most ``max_rate`` × hours when that is given), the counter restarted from
   0: a **reset**, and the interval counts the new value. Otherwise a new meter started at an
   arbitrary reading: a detected **swap**, and the interval counts 0. The reference becomes the new
   value either way.

Each reset, swap, jump and conflict comes back as an ``Event`` with a reason in words (an English
template from ``MESSAGES`` and its parameters), so that the caller can record an audited
correction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid

__all__ = [
    "CONFLICT",
    "DECLARED_SWAP",
    "DETECTED_SWAP",
    "JUMP",
    "MESSAGES",
    "RESET",
    "Deltas",
    "Event",
    "Interval",
    "Swap",
    "bucket_energy",
    "deltas",
]

Interval = Literal["15min", "1h", "1d"]
EventKind = Literal["reset", "swap", "jump", "conflict"]

RESET = "the counter fell from {before} to {after}: a restart from 0, so {counted} was counted"
DETECTED_SWAP = (
    "the counter fell from {before} to {after}, too far for a restart from 0: "
    "taken as a new meter, so nothing was counted for this interval"
)
DECLARED_SWAP = "meter swapped: the old meter ended at {old_final}, the new one started at {new_initial}"
JUMP = (
    "the counter rose from {before} to {after} in {minutes} min, more than the "
    "{max_rate} per hour allowed: nothing was counted for this interval"
)
CONFLICT = "two readings at the same time, {low} and {high}: the higher was kept"
MESSAGES = (RESET, DETECTED_SWAP, DECLARED_SWAP, JUMP, CONFLICT)

_A = TypeVar("_A", bound=np.ndarray[Any, Any])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000
_STEP_US = {"15min": 15 * 60 * 1_000_000, "1h": _US_PER_HOUR}
_SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Swap:
    """A meter swap declared by whoever did it: exact, unlike a detected one."""

    time: datetime
    old_final: float
    new_initial: float


@dataclass(frozen=True, slots=True)
class Event:
    """A correction made while computing deltas: a reset, a swap, a jump or a conflict."""

    time: datetime
    kind: EventKind
    before: float
    after: float
    reason_template: str
    params: Mapping[str, str | float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The reason in English words."""
        return self.reason_template.format(**self.params)


@dataclass(frozen=True, slots=True, eq=False)
class Deltas:
    """Consumption per interval between consecutive readings (UTC, microseconds since 1970).

    ``starts[i]``–``ends[i]`` is the interval and ``amounts[i] >= 0`` its consumption. Intervals are
    contiguous and in time order. The arrays are read-only.
    """

    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    amounts: npt.NDArray[np.float64]
    events: tuple[Event, ...]
    readings: int
    repeats: int
    jitter: int

    @property
    def total(self) -> float:
        """The consumption over all intervals."""
        return float(self.amounts.sum())

    def intervals(self) -> list[tuple[datetime, datetime, float]]:
        """The intervals as (start, end, amount) with aware UTC datetimes."""
        return [
            (_to_datetime(s), _to_datetime(e), float(a))
            for s, e, a in zip(self.starts.tolist(), self.ends.tolist(), self.amounts.tolist(), strict=True)
        ]


def deltas(
    times: Sequence[datetime],
    values: Sequence[float] | npt.NDArray[np.float64],
    *,
    previous: tuple[datetime, float] | None = None,
    swaps: Sequence[Swap | tuple[datetime, float, float]] = (),
    drop_fraction: float = 0.1,
    max_rate: float | None = None,
) -> Deltas:
    """The consumption of each interval between readings, by the rule in the module docstring.

    ``previous`` is the last reading before ``times`` (the baseline of the first interval);
    without it the first reading only sets the baseline. ``max_rate`` is in units per hour.
    """
    if len(times) != len(values):
        raise Invalid(f"{len(times)} times but {len(values)} values: one value per time is needed")
    if not 0 < drop_fraction < 1:
        raise Invalid(f"drop_fraction must be between 0 and 1, not {drop_fraction}")
    if max_rate is not None and not max_rate > 0:
        raise Invalid(f"max_rate must be positive, not {max_rate}")
    stamps = np.fromiter((_to_us(t, "times") for t in times), dtype=np.int64, count=len(times))
    numbers = np.asarray(values, dtype=np.float64)
    _check_values(numbers)
    order = np.lexsort((numbers, stamps))
    stamps, numbers = stamps[order], numbers[order]
    events: list[Event] = []
    stamps, numbers, repeats = _dedupe(stamps, numbers, events)
    readings = len(stamps)
    if previous is not None:
        before_us = _to_us(previous[0], "previous")
        _check_values(np.asarray([previous[1]], dtype=np.float64))
        if readings and before_us >= stamps[0]:
            raise Invalid(
                f"previous reading at {previous[0].isoformat()} is not before the first reading "
                f"at {_to_datetime(int(stamps[0])).isoformat()}"
            )
        stamps = np.concatenate(([before_us], stamps))
        numbers = np.concatenate(([float(previous[1])], numbers))
    declared = sorted((_swap(s) for s in swaps), key=lambda s: s.time)
    if len(stamps) < 2:
        empty_i = _frozen(np.zeros(0, dtype=np.int64))
        return Deltas(empty_i, empty_i, _frozen(np.zeros(0)), tuple(events), readings, repeats, 0)
    amounts, jitter = _amounts(stamps, numbers, declared, drop_fraction, max_rate, events)
    events.sort(key=lambda e: e.time)
    return Deltas(
        starts=_frozen(stamps[:-1].copy()),
        ends=_frozen(stamps[1:].copy()),
        amounts=_frozen(amounts),
        events=tuple(events),
        readings=readings,
        repeats=repeats,
        jitter=jitter,
    )


def bucket_energy(
    energy: Deltas, *, interval: Interval = "15min", tz: tzinfo = _SHANGHAI
) -> list[tuple[datetime, float]]:
    """Consumption per local bucket, as (bucket start in UTC, amount), every bucket from the one
    holding the first interval's start to the one holding the last interval's end.

    An interval that spans bucket edges is shared in proportion to time (consumption is taken as
    even within an interval). Days are local days in ``tz``; hours and quarter hours are local
    too (they follow the zone's offset). No bucket is negative, and the buckets add up to
    ``energy.total`` to floating-point rounding.
    """
    if interval not in ("15min", "1h", "1d"):
        raise Invalid(f"interval must be 15min, 1h or 1d, not {interval!r}")
    if len(energy.starts) == 0:
        return []
    first, last = int(energy.starts[0]), int(energy.ends[-1])
    edges = _edges(first, last, interval, tz)
    # The consumed total as a function of time: linear within each interval, flat in any gap.
    xs = np.empty(2 * len(energy.starts), dtype=np.float64)
    xs[0::2] = energy.starts - first
    xs[1::2] = energy.ends - first
    cumulative = np.concatenate(([0.0], np.cumsum(energy.amounts)))
    ys = np.empty_like(xs)
    ys[0::2] = cumulative[:-1]
    ys[1::2] = cumulative[1:]
    at_edges = np.interp((edges - first).astype(np.float64), xs, ys)
    at_edges = np.maximum.accumulate(at_edges)  # rounding can never make a bucket negative
    amounts = np.diff(at_edges)
    return [(_to_datetime(s), float(a)) for s, a in zip(edges[:-1].tolist(), amounts.tolist(), strict=True)]


# --- the rule ------------------------------------------------------------------------------------


def _amounts(
    stamps: npt.NDArray[np.int64],
    numbers: npt.NDArray[np.float64],
    declared: list[Swap],
    drop_fraction: float,
    max_rate: float | None,
    events: list[Event],
) -> tuple[npt.NDArray[np.float64], int]:
    hours = np.diff(stamps) / _US_PER_HOUR
    rises = np.diff(numbers)
    if (
        not declared
        and bool(np.all(rises >= 0))
        and (max_rate is None or bool(np.all(rises <= max_rate * hours)))
    ):
        return rises, 0  # the usual case: a counter that only rose, at a plausible rate
    out = np.zeros(len(rises), dtype=np.float64)
    times, values, spans = stamps.tolist(), numbers.tolist(), hours.tolist()
    swap_us = [_to_us(s.time, "swaps") for s in declared]
    next_swap, jitter = 0, 0
    reference = values[0]
    for i in range(1, len(values)):
        value, moment, span = values[i], times[i], spans[i - 1]
        amount = 0.0
        while next_swap < len(declared) and swap_us[next_swap] <= moment:
            swap = declared[next_swap]
            if swap_us[next_swap] > times[i - 1]:
                amount += max(swap.old_final - reference, 0.0)
                reference = swap.new_initial
                events.append(
                    Event(
                        time=swap.time,
                        kind="swap",
                        before=swap.old_final,
                        after=swap.new_initial,
                        reason_template=DECLARED_SWAP,
                        params={"old_final": swap.old_final, "new_initial": swap.new_initial},
                    )
                )
            next_swap += 1
        rise = value - reference
        limit = math.inf if max_rate is None else max_rate * span
        if rise >= 0:
            if rise > limit:
                events.append(
                    Event(
                        time=_to_datetime(moment),
                        kind="jump",
                        before=reference,
                        after=value,
                        reason_template=JUMP,
                        params={
                            "before": reference,
                            "after": value,
                            "minutes": round(span * 60, 1),
                            "max_rate": float(max_rate or 0.0),
                        },
                    )
                )
            else:
                amount += rise
            reference = value
        elif -rise <= drop_fraction * reference:
            jitter += 1  # keep the reference: the rise back to it is not consumption
        else:
            restarted = value <= drop_fraction * reference and value <= limit
            if restarted:
                amount += value
            events.append(
                Event(
                    time=_to_datetime(moment),
                    kind="reset" if restarted else "swap",
                    before=reference,
                    after=value,
                    reason_template=RESET if restarted else DETECTED_SWAP,
                    params={"before": reference, "after": value, "counted": value}
                    if restarted
                    else {"before": reference, "after": value},
                )
            )
            reference = value
        out[i - 1] = amount
    return out, jitter


def _dedupe(
    stamps: npt.NDArray[np.int64], numbers: npt.NDArray[np.float64], events: list[Event]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], int]:
    """Drop exact repeats; of different values at one time keep the highest (the input is sorted
    by time, then value)."""
    if len(stamps) < 2:
        return stamps, numbers, 0
    repeat = np.concatenate(([False], (stamps[1:] == stamps[:-1]) & (numbers[1:] == numbers[:-1])))
    stamps, numbers = stamps[~repeat], numbers[~repeat]
    same_time = np.concatenate((stamps[1:] == stamps[:-1], [False]))
    for i in np.flatnonzero(same_time).tolist():
        events.append(
            Event(
                time=_to_datetime(int(stamps[i])),
                kind="conflict",
                before=float(numbers[i]),
                after=float(numbers[i + 1]),
                reason_template=CONFLICT,
                params={"low": float(numbers[i]), "high": float(numbers[i + 1])},
            )
        )
    return stamps[~same_time], numbers[~same_time], int(repeat.sum())


def _edges(first: int, last: int, interval: Interval, tz: tzinfo) -> npt.NDArray[np.int64]:
    """Bucket edges (µs) from the bucket holding ``first`` to the first edge at or after ``last``."""
    start_day = _to_datetime(first).astimezone(tz).date()
    end_day = _to_datetime(last).astimezone(tz).date() + timedelta(days=1)
    midnights = []
    day = start_day
    while day <= end_day:
        midnights.append(_local_midnight_us(day, tz))
        day += timedelta(days=1)
    if interval == "1d":
        grid = np.asarray(midnights, dtype=np.int64)
    else:
        # Stepping from a local midnight in UTC stays on local quarter hours (every zone's offset
        # is a multiple of 15 min) and on local hours across whole-hour offset changes.
        grid = np.arange(midnights[0], midnights[-1] + 1, _STEP_US[interval], dtype=np.int64)
    lo = int(np.searchsorted(grid, first, side="right")) - 1
    hi = int(np.searchsorted(grid, last, side="left"))
    return grid[lo : hi + 1]


def _local_midnight_us(day: date, tz: tzinfo) -> int:
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return _to_us(midnight, "day")


def _check_values(numbers: npt.NDArray[np.float64]) -> None:
    bad = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0))
    if len(bad):
        i = int(bad[0])
        raise Invalid(
            f"counter reading {i} is {float(numbers[i])!r}: a cumulative counter is a finite number >= 0",
            detail={"index": i},
        )


def _swap(item: Swap | tuple[datetime, float, float]) -> Swap:
    swap = item if isinstance(item, Swap) else Swap(item[0], float(item[1]), float(item[2]))
    _to_us(swap.time, "swaps")
    if (
        not (math.isfinite(swap.old_final) and math.isfinite(swap.new_initial))
        or min(swap.old_final, swap.new_initial) < 0
    ):
        raise Invalid(f"swap at {swap.time.isoformat()}: readings must be finite numbers >= 0")
    return swap


def _to_us(moment: datetime, what: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Invalid(f"{what}: {moment.isoformat()} has no timezone; times must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _frozen(array: _A) -> _A:
    array.setflags(write=False)
    return array

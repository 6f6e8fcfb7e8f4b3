"""Demand-response baselines and the reduction a site delivered against them.

**High X of Y** (``high_x_of_y``). The baseline for an event window on day D is, per slot, the
average over the X days with the highest use in the window among the last Y *similar* days before
D: the same day type (weekday, or weekend and holiday, as ``tariff.day_type`` says), within
``lookback_days``, leaving out days with earlier demand-response events, outage days and days with
missing data in the window (or in the adjustment hours). With X = Y = 10 it is the average of the
last 10 similar days (California ISO's "10 in 10"); PJM's "high 4 of 5" is X = 4, Y = 5. Fewer
similar days than Y is refused, saying how many were found.

**Same-day adjustment** (optional), from the ``adjustment_hours`` hours before the event (ending
``gap_minutes`` before it, so that a site cannot raise its baseline by using more just before):

- *additive*: the baseline is raised (or lowered) by the actual mean demand in those hours minus
  the baseline days' mean demand in the same hours;
- *multiplicative*: the baseline is scaled by their ratio.

``cap`` limits either: the factor to 1 ± cap, the additive shift to ± cap × the baseline days'
mean in those hours; common practice caps the multiplicative adjustment at ±20 %. A baseline is
never below 0 kW.

**Forecast baseline** (``forecast_baseline``): a forecast of the site's demand for the window
(made elsewhere, given as plain numbers) is the baseline, optionally with the same adjustment.

``delivered_reduction`` is baseline minus actual per slot, in kW and kWh, with the method stated
in words. A slot where the site used more than its baseline counts negative; nothing is clipped.
Demand is in kW (the mean over each slot); rows of ``loads`` are local days with a fixed number
of slots (a zone without daylight saving time, such as China's).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid
from zhishe.energy.tariff import day_type

__all__ = [
    "ADDITIVE",
    "CAPPED",
    "FORECAST",
    "HIGH_WEEKDAYS",
    "HIGH_WEEKENDS",
    "MESSAGES",
    "MULTIPLICATIVE",
    "Baseline",
    "Reduction",
    "delivered_reduction",
    "forecast_baseline",
    "high_x_of_y",
]

Adjustment = Literal["none", "additive", "multiplicative"]

HIGH_WEEKDAYS = "average of the highest {x} of the last {y} similar weekdays"
HIGH_WEEKENDS = "average of the highest {x} of the last {y} similar weekend days and holidays"
FORECAST = "the forecast of the site's demand ({name})"
ADDITIVE = "with a same-day additive adjustment from the {hours} hours before the event"
MULTIPLICATIVE = (
    "with a same-day multiplicative adjustment from the {hours} hours before the event, capped at ±{cap} %"
)
ADDITIVE_GAP = "with a same-day additive adjustment from the {hours} hours ending {gap} min before the event"
MULTIPLICATIVE_GAP = (
    "with a same-day multiplicative adjustment from the {hours} hours ending {gap} min before the event, "
    "capped at ±{cap} %"
)
CAPPED = "the adjustment was held at the cap ({applied} instead of {wanted})"
MESSAGES = (
    HIGH_WEEKDAYS,
    HIGH_WEEKENDS,
    FORECAST,
    ADDITIVE,
    MULTIPLICATIVE,
    ADDITIVE_GAP,
    MULTIPLICATIVE_GAP,
    CAPPED,
)

_SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True, eq=False)
class Baseline:
    """The demand a site would have had in the event window without the event, per slot (kW)."""

    start: datetime
    slot_minutes: int
    kw: npt.NDArray[np.float64]
    method_parts: tuple[tuple[str, Mapping[str, str | int | float]], ...]
    days_used: tuple[date, ...] = ()
    adjustment: float = 0.0
    capped: bool = False

    @property
    def method(self) -> str:
        """How the baseline was made, in English words."""
        return ", ".join(template.format(**params) for template, params in self.method_parts)

    @property
    def end(self) -> datetime:
        """The end of the event window."""
        return self.start + timedelta(minutes=self.slot_minutes * len(self.kw))


@dataclass(frozen=True, slots=True, eq=False)
class Reduction:
    """The reduction delivered against a baseline: per slot and in total, kW and kWh."""

    start: datetime
    slot_minutes: int
    kw: npt.NDArray[np.float64]
    kwh: npt.NDArray[np.float64]
    total_kwh: float
    mean_kw: float
    baseline_kwh: float
    method: str


def high_x_of_y(
    loads: npt.ArrayLike,
    days: Sequence[date],
    *,
    event_day: date,
    window: tuple[time, time],
    x: int = 10,
    y: int = 10,
    tz: tzinfo = _SHANGHAI,
    event_days: Collection[date] = (),
    outage_days: Collection[date] = (),
    holidays: Collection[date] = (),
    workdays: Collection[date] = (),
    lookback_days: int = 45,
    adjustment: Adjustment = "none",
    adjustment_hours: float = 2.0,
    gap_minutes: int = 0,
    cap: float | None = 0.2,
) -> Baseline:
    """The high-X-of-Y baseline for the event ``window`` (local start and end) on ``event_day``.

    ``loads[i]`` is the demand (kW) of local day ``days[i]``, one column per slot of the day.
    """
    table = np.asarray(loads, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] != len(days):
        raise Invalid(f"loads must be one row per day: {len(days)} days but shape {table.shape}")
    if len(set(days)) != len(days):
        raise Invalid("a day appears twice in days: each day needs exactly one row of loads")
    if not 1 <= x <= y:
        raise Invalid(f"x must be between 1 and y ({y}), not {x}")
    slot_minutes = _slot_minutes(table.shape[1])
    first, last = _window_slots(window, slot_minutes)
    pre = _pre_slots(adjustment, first, adjustment_hours, gap_minutes, slot_minutes, window)
    kind = day_type(event_day, holidays=holidays, workdays=workdays)
    needed = [*range(first, last), *(range(*pre) if pre else ())]
    candidates = [
        (day, i)
        for i, day in sorted(enumerate(days), key=lambda item: item[1], reverse=True)
        if event_day - timedelta(days=lookback_days) <= day < event_day
        and day_type(day, holidays=holidays, workdays=workdays) == kind
        and day not in event_days
        and day not in outage_days
        and bool(np.all(np.isfinite(table[i, needed])))
    ][:y]
    if len(candidates) < y:
        label = "weekdays" if kind == "weekday" else "weekend days or holidays"
        raise Invalid(
            f"only {len(candidates)} similar {label} without events, outages or missing data in the "
            f"{lookback_days} days before {event_day.isoformat()}: {y} are needed",
            detail={"found": len(candidates), "needed": y},
        )
    ranked = sorted(candidates, key=lambda c: (float(table[c[1], first:last].sum()), c[0]), reverse=True)[:x]
    rows = [i for _, i in ranked]
    base = table[rows, first:last].mean(axis=0)
    parts: list[tuple[str, Mapping[str, str | int | float]]] = [
        (HIGH_WEEKDAYS if kind == "weekday" else HIGH_WEEKENDS, {"x": x, "y": y})
    ]
    applied, capped = 0.0 if adjustment != "multiplicative" else 1.0, False
    if pre:
        if event_day not in days:
            raise Invalid(f"the {adjustment} adjustment needs the event day {event_day.isoformat()} in days")
        today = table[days.index(event_day), pre[0] : pre[1]]
        if not bool(np.all(np.isfinite(today))):
            raise Invalid(f"the event day {event_day.isoformat()} has missing data in the adjustment hours")
        base, applied, capped, more = _adjust(
            base,
            actual_pre=float(today.mean()),
            baseline_pre=float(table[rows, pre[0] : pre[1]].mean()),
            how=adjustment,
            cap=cap,
            hours=adjustment_hours,
            gap=gap_minutes,
        )
        parts += more
    start = datetime.combine(event_day, window[0], tzinfo=tz).astimezone(UTC)
    return Baseline(
        start=start,
        slot_minutes=slot_minutes,
        kw=_frozen(base),
        method_parts=tuple(parts),
        days_used=tuple(sorted(day for day, _ in ranked)),
        adjustment=applied,
        capped=capped,
    )


def forecast_baseline(
    forecast_kw: npt.ArrayLike,
    *,
    start: datetime,
    slot_minutes: int = 15,
    name: str = "day-ahead",
    adjustment: Adjustment = "none",
    actual_before: npt.ArrayLike | None = None,
    forecast_before: npt.ArrayLike | None = None,
    gap_minutes: int = 0,
    cap: float | None = 0.2,
) -> Baseline:
    """A forecast of the window's demand as the baseline; the adjustment compares the actual and
    forecast demand of the slots before the event (``actual_before``, ``forecast_before``)."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise Invalid(f"start is {start.isoformat()} without a timezone")
    if slot_minutes <= 0 or 1440 % slot_minutes:
        raise Invalid(f"slot_minutes must divide a day, not {slot_minutes}")
    values = np.asarray(forecast_kw, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not bool(np.all(np.isfinite(values) & (values >= 0))):
        raise Invalid("the forecast must be a non-empty list of finite demands >= 0 kW")
    parts: list[tuple[str, Mapping[str, str | int | float]]] = [(FORECAST, {"name": name})]
    applied, capped = 0.0 if adjustment != "multiplicative" else 1.0, False
    if adjustment != "none":
        if actual_before is None or forecast_before is None:
            raise Invalid(f"the {adjustment} adjustment needs actual_before and forecast_before")
        actual = np.asarray(actual_before, dtype=np.float64)
        expected = np.asarray(forecast_before, dtype=np.float64)
        if actual.shape != expected.shape or actual.ndim != 1 or not len(actual):
            raise Invalid(
                f"actual_before ({actual.shape}) and forecast_before ({expected.shape}) must be lists of the same length"
            )
        values, applied, capped, more = _adjust(
            values,
            actual_pre=float(actual.mean()),
            baseline_pre=float(expected.mean()),
            how=adjustment,
            cap=cap,
            hours=len(actual) * slot_minutes / 60,
            gap=gap_minutes,
        )
        parts += more
    return Baseline(
        start=start.astimezone(UTC),
        slot_minutes=slot_minutes,
        kw=_frozen(values.copy()),
        method_parts=tuple(parts),
        adjustment=applied,
        capped=capped,
    )


def delivered_reduction(baseline: Baseline, actual: npt.ArrayLike) -> Reduction:
    """Baseline minus actual demand per slot (kW, and kWh over the slot), and the totals."""
    demand = np.asarray(actual, dtype=np.float64)
    if demand.shape != baseline.kw.shape:
        raise Invalid(f"actual has {demand.size} slots but the baseline has {baseline.kw.size}")
    if not bool(np.all(np.isfinite(demand))):
        raise Invalid("actual demand has missing values: the reduction cannot be measured")
    hours = baseline.slot_minutes / 60
    kw = baseline.kw - demand
    kwh = kw * hours
    return Reduction(
        start=baseline.start,
        slot_minutes=baseline.slot_minutes,
        kw=_frozen(kw),
        kwh=_frozen(kwh),
        total_kwh=float(kwh.sum()),
        mean_kw=float(kw.mean()),
        baseline_kwh=float(baseline.kw.sum() * hours),
        method=baseline.method,
    )


# --- helpers -------------------------------------------------------------------------------------


def _adjust(
    base: npt.NDArray[np.float64],
    *,
    actual_pre: float,
    baseline_pre: float,
    how: Adjustment,
    cap: float | None,
    hours: float,
    gap: int,
) -> tuple[npt.NDArray[np.float64], float, bool, list[tuple[str, Mapping[str, str | int | float]]]]:
    """The adjusted baseline, the adjustment applied, whether the cap held it, and the words."""
    if cap is not None and not cap >= 0:
        raise Invalid(f"cap must be >= 0, not {cap}")
    shown_hours = _number(hours)
    capped = False
    if how == "additive":
        wanted = actual_pre - baseline_pre
        applied = wanted
        if cap is not None:
            applied = float(np.clip(wanted, -cap * baseline_pre, cap * baseline_pre))
            capped = applied != wanted
        words: list[tuple[str, Mapping[str, str | int | float]]] = [
            (ADDITIVE_GAP, {"hours": shown_hours, "gap": gap}) if gap else (ADDITIVE, {"hours": shown_hours})
        ]
        if capped:
            words.append((CAPPED, {"applied": f"{applied:+.2f} kW", "wanted": f"{wanted:+.2f} kW"}))
        return np.maximum(base + applied, 0.0), applied, capped, words
    if how == "multiplicative":
        if baseline_pre <= 0:
            raise Invalid(
                "the multiplicative adjustment needs baseline demand above 0 kW in the hours before the event"
            )
        wanted = actual_pre / baseline_pre
        applied = wanted if cap is None else float(np.clip(wanted, 1 - cap, 1 + cap))
        capped = applied != wanted
        cap_text = _number(100 * cap) if cap is not None else "∞"
        params: dict[str, str | int | float] = {"hours": shown_hours, "cap": cap_text}
        words = [(MULTIPLICATIVE_GAP, {**params, "gap": gap}) if gap else (MULTIPLICATIVE, params)]
        if capped:
            words.append((CAPPED, {"applied": f"×{applied:.3f}", "wanted": f"×{wanted:.3f}"}))
        return np.maximum(base * applied, 0.0), applied, capped, words
    raise Invalid(f"adjustment must be none, additive or multiplicative, not {how!r}")


def _pre_slots(
    adjustment: str, first: int, hours: float, gap_minutes: int, slot_minutes: int, window: tuple[time, time]
) -> tuple[int, int] | None:
    if adjustment == "none":
        return None
    if adjustment not in ("additive", "multiplicative"):
        raise Invalid(f"adjustment must be none, additive or multiplicative, not {adjustment!r}")
    span, gap = hours * 60 / slot_minutes, gap_minutes / slot_minutes
    if span <= 0 or span != int(span) or gap < 0 or gap != int(gap):
        raise Invalid(
            f"the adjustment hours ({hours}) and gap ({gap_minutes} min) must be whole numbers of "
            f"{slot_minutes}-minute slots"
        )
    end = first - int(gap)
    begin = end - int(span)
    if begin < 0:
        raise Invalid(
            f"the adjustment needs {hours} hours before {window[0]:%H:%M} on the event day"
            + (f" and a gap of {gap_minutes} min" if gap_minutes else "")
            + "; the day starts too late for that"
        )
    return begin, end


def _window_slots(window: tuple[time, time], slot_minutes: int) -> tuple[int, int]:
    start = window[0].hour * 60 + window[0].minute
    end = window[1].hour * 60 + window[1].minute or 24 * 60
    if start % slot_minutes or end % slot_minutes or window[0].second or window[1].second:
        raise Invalid(
            f"the event window {window[0]:%H:%M}-{window[1]:%H:%M} is not on {slot_minutes}-minute slots"
        )
    if end <= start:
        raise Invalid(f"the event window {window[0]:%H:%M}-{window[1]:%H:%M} ends before it starts")
    return start // slot_minutes, end // slot_minutes


def _slot_minutes(columns: int) -> int:
    if columns <= 0 or 1440 % columns:
        raise Invalid(f"a day of {columns} slots does not divide into whole minutes")
    return 1440 // columns


def _number(value: float) -> str | int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def _frozen(array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    array.setflags(write=False)
    return array

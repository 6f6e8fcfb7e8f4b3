"""Detectors over consumption series: water leaks, use outside the household's own forecast
interval, and counter resets or meter swaps. (Unusual inactivity is in ``inactivity``.)

Every detector returns ``Alert``\\ s whose reason is in words: an English template, a literal from
``MESSAGES``, and its parameters, so that the platform can translate the template and fill it in.
Times in parameters are local clock times ("07:30"), with the date ("2026-03-02 07:30") when a
span crosses local days.

- **Leak** (``water_leak``): (a) water flowed in every interval of the night window (01:00–05:00
  local by default), or (b) no hour in 24 h or more was without flow. An interval or hour with at
  most ``still`` litres per hour counts as no flow. Only fully observed nights and contiguous
  hours count. A night inside a 24-hour run is reported by the run alone.
- **Abnormal use** (``abnormal_use``): runs of at least ``min_run`` consecutive slots whose actual
  use is above the upper (or below the lower) bound of the forecast interval. The expected range
  shown is the sum of the slots' bounds; ``excess`` says how far outside the run was.
- **Counter corrections** (``counter_alerts``): each ``zhishe.iot.counters.Event`` as an alert,
  with the event's own reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid
from zhishe.iot.counters import Event

__all__ = [
    "LEAK_ALL_DAY",
    "LEAK_NIGHT",
    "MESSAGES",
    "USE_ABOVE",
    "USE_BELOW",
    "Alert",
    "Severity",
    "abnormal_use",
    "clock_text",
    "counter_alerts",
    "water_leak",
]

Severity = Literal["info", "warning", "critical"]

LEAK_ALL_DAY = "water has flowed every hour for {hours} h; the lowest hour used {min} L"
LEAK_NIGHT = "flow never stopped between {night_start} and {night_end} (at least {min} L per {minutes} min)"
USE_ABOVE = "use was {actual} kWh between {start} and {end}, above the expected {low}–{high} kWh"
USE_BELOW = "use was {actual} kWh between {start} and {end}, below the expected {low}–{high} kWh"
MESSAGES = (LEAK_ALL_DAY, LEAK_NIGHT, USE_ABOVE, USE_BELOW)

_STEPS = {"15min": timedelta(minutes=15), "1h": timedelta(hours=1)}
_COUNTER_KINDS: dict[str, tuple[str, Severity]] = {
    "reset": ("counter_reset", "info"),
    "swap": ("meter_swap", "warning"),
    "jump": ("counter_jump", "warning"),
    "conflict": ("counter_conflict", "info"),
}


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a detector found: what, about whom or what, when, how serious, and why in words."""

    kind: str
    subject: str
    start: datetime
    end: datetime
    severity: Severity
    reason_template: str
    params: Mapping[str, str | int | float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The reason in English words."""
        return self.reason_template.format(**self.params)


def clock_text(moment: datetime, *, tz: tzinfo, reference: datetime | None = None) -> str:
    """``moment`` as local "HH:MM", or "YYYY-MM-DD HH:MM" when it is not on ``reference``'s local day."""
    local = moment.astimezone(tz)
    if reference is not None and reference.astimezone(tz).date() != local.date():
        return f"{local:%Y-%m-%d %H:%M}"
    return f"{local:%H:%M}"


def water_leak(
    flows: Sequence[tuple[datetime, float]],
    *,
    tz: tzinfo,
    interval: Literal["15min", "1h"] = "15min",
    unit: Literal["L", "m3"] = "L",
    subject: str = "water",
    night: tuple[time, time] = (time(1), time(5)),
    still: float = 0.0,
    hours: int = 24,
) -> list[Alert]:
    """Leaks in water use per interval (start, amount): flow through the night window, or no hour
    without flow for ``hours`` hours. ``still`` is the flow (litres per hour) that counts as none."""
    step = _step(interval)
    if hours < 1:
        raise Invalid(f"hours must be at least 1, not {hours}")
    if still < 0:
        raise Invalid(f"still must be >= 0 litres per hour, not {still}")
    starts, litres = _series(flows, "flows")
    litres = litres * (1000.0 if unit == "m3" else 1.0)
    per_interval = still * (step / timedelta(hours=1))
    by_start = dict(zip(starts, litres.tolist(), strict=True))
    runs = _flowing_hours(by_start, step, tz, still, hours)
    alerts = [
        Alert(
            kind="leak",
            subject=subject,
            start=begin,
            end=end,
            severity="critical",
            reason_template=LEAK_ALL_DAY,
            params={"hours": count, "min": round(low, 1)},
        )
        for begin, end, count, low in runs
    ]
    for begin, end, low in _flowing_nights(by_start, step, tz, night, per_interval):
        if any(r_begin <= begin and end <= r_end for r_begin, r_end, _, _ in runs):
            continue
        alerts.append(
            Alert(
                kind="leak",
                subject=subject,
                start=begin,
                end=end,
                severity="warning",
                reason_template=LEAK_NIGHT,
                params={
                    "night_start": f"{night[0]:%H:%M}",
                    "night_end": f"{night[1]:%H:%M}",
                    "min": round(low, 1),
                    "minutes": int(step / timedelta(minutes=1)),
                },
            )
        )
    return sorted(alerts, key=lambda a: a.start)


def abnormal_use(
    starts: Sequence[datetime],
    actual: Sequence[float] | npt.NDArray[np.float64],
    *,
    lower: Sequence[float] | npt.NDArray[np.float64],
    upper: Sequence[float] | npt.NDArray[np.float64],
    tz: tzinfo,
    interval: Literal["15min", "1h"] = "15min",
    subject: str = "electricity",
    min_run: int = 4,
    min_excess: float = 0.0,
) -> list[Alert]:
    """Runs of at least ``min_run`` consecutive slots above the forecast interval's upper bound (or
    below its lower bound) by more than ``min_excess`` kWh in total. Missing actuals (NaN) and
    missing slots end a run."""
    step = _step(interval)
    if min_run < 1:
        raise Invalid(f"min_run must be at least 1, not {min_run}")
    n = len(starts)
    arrays = [np.asarray(a, dtype=np.float64) for a in (actual, lower, upper)]
    for name, array in zip(("actual", "lower", "upper"), arrays, strict=True):
        if len(array) != n:
            raise Invalid(f"{name} has {len(array)} values for {n} slots")
    use, low, high = arrays
    if bool(np.any(low > high)):
        i = int(np.flatnonzero(low > high)[0])
        raise Invalid(f"slot {i}: the lower bound {low[i]} is above the upper bound {high[i]}")
    moments = [_aware(t, "starts", i) for i, t in enumerate(starts)]
    side = np.where(use > high, 1, np.where(use < low, -1, 0))
    side[np.isnan(use)] = 0
    alerts: list[Alert] = []
    i = 0
    while i < n:
        if side[i] == 0:
            i += 1
            continue
        j = i + 1
        while j < n and side[j] == side[i] and moments[j] - moments[j - 1] == step:
            j += 1
        above = side[i] > 0
        outside = float((use[i:j] - high[i:j]).sum() if above else (low[i:j] - use[i:j]).sum())
        if j - i >= min_run and outside > min_excess:
            end = moments[j - 1] + step
            alerts.append(
                Alert(
                    kind="abnormal",
                    subject=subject,
                    start=moments[i],
                    end=end,
                    severity="warning" if above else "info",
                    reason_template=USE_ABOVE if above else USE_BELOW,
                    params={
                        "actual": round(float(use[i:j].sum()), 2),
                        "start": _span_text(moments[i], moments[i], end, tz),
                        "end": _span_text(end, moments[i], end, tz),
                        "low": round(float(low[i:j].sum()), 2),
                        "high": round(float(high[i:j].sum()), 2),
                        "excess": round(outside, 2),
                        "slots": j - i,
                    },
                )
            )
        i = j
    return alerts


def counter_alerts(events: Sequence[Event], *, subject: str) -> list[Alert]:
    """Each counter correction (reset, swap, jump, conflict) as an alert with the event's reason."""
    alerts = []
    for event in events:
        kind, severity = _COUNTER_KINDS[event.kind]
        alerts.append(
            Alert(
                kind=kind,
                subject=subject,
                start=event.time,
                end=event.time,
                severity=severity,
                reason_template=event.reason_template,
                params=dict(event.params),
            )
        )
    return alerts


# --- helpers -------------------------------------------------------------------------------------


def _flowing_hours(
    by_start: dict[datetime, float], step: timedelta, tz: tzinfo, still: float, hours: int
) -> list[tuple[datetime, datetime, int, float]]:
    """Runs of at least ``hours`` contiguous local hours, each fully observed and flowing."""
    per_hour = round(timedelta(hours=1) / step)
    totals: dict[datetime, list[float]] = {}
    for start, amount in by_start.items():
        local = start.astimezone(tz)
        hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        totals.setdefault(hour, []).append(amount)
    flowing = sorted(h for h, parts in totals.items() if len(parts) == per_hour and sum(parts) > still)
    runs: list[tuple[datetime, datetime, int, float]] = []
    i = 0
    while i < len(flowing):
        j = i + 1
        while j < len(flowing) and flowing[j] - flowing[j - 1] == timedelta(hours=1):
            j += 1
        if j - i >= hours:
            low = min(sum(totals[h]) for h in flowing[i:j])
            runs.append((flowing[i], flowing[j - 1] + timedelta(hours=1), j - i, low))
        i = j
    return runs


def _flowing_nights(
    by_start: dict[datetime, float], step: timedelta, tz: tzinfo, night: tuple[time, time], still: float
) -> list[tuple[datetime, datetime, float]]:
    """Nights whose every interval is observed and had more than ``still`` litres."""
    days = sorted({s.astimezone(tz).date() for s in by_start})
    found = []
    for day in days:
        begin = datetime.combine(day, night[0], tzinfo=tz).astimezone(UTC)
        end_day = day if night[1] > night[0] else day + timedelta(days=1)
        end = datetime.combine(end_day, night[1], tzinfo=tz).astimezone(UTC)
        slots = []
        moment = begin
        while moment < end:
            slots.append(by_start.get(moment))
            moment += step
        if slots and all(v is not None and v > still for v in slots):
            found.append((begin, end, min(v for v in slots if v is not None)))
    return found


def _series(
    pairs: Sequence[tuple[datetime, float]], what: str
) -> tuple[list[datetime], npt.NDArray[np.float64]]:
    rows = sorted(((_aware(t, what, i), float(v)) for i, (t, v) in enumerate(pairs)), key=lambda r: r[0])
    values = np.asarray([v for _, v in rows], dtype=np.float64)
    if len(values) and not bool(np.all(np.isfinite(values) & (values >= 0))):
        i = int(np.flatnonzero(~(np.isfinite(values) & (values >= 0)))[0])
        raise Invalid(f"{what}: the amount at {rows[i][0].isoformat()} is {values[i]!r}; amounts are >= 0")
    return [t for t, _ in rows], values


def _aware(moment: datetime, what: str, index: int) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Invalid(f"{what}[{index}] is {moment.isoformat()} without a timezone", detail={"index": index})
    return moment.astimezone(UTC)


def _step(interval: str) -> timedelta:
    if interval not in _STEPS:
        raise Invalid(f"interval must be 15min or 1h, not {interval!r}")
    return _STEPS[interval]


def _span_text(moment: datetime, start: datetime, end: datetime, tz: tzinfo) -> str:
    """A time of a span [start, end) as "HH:MM", or with its date when the span crosses local days."""
    same_day = start.astimezone(tz).date() == (end - timedelta(microseconds=1)).astimezone(tz).date()
    return f"{moment.astimezone(tz):%H:%M}" if same_day else f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"

"""Unusual inactivity of a resident living alone, judged against the household's own routine.

The routine is learned (``learn_routine``) from the household's activity before today: motion
sensors, door contacts and the times the meter shows use above standby, over the last ``weeks``
weeks. A day on which no source saw anything (the resident was away) is left out; fewer than
``min_days`` days with activity is refused. For each source and each kind of day (weekday or
weekend, holidays counting as weekend and make-up working days as weekday; a day of the week of
its own once it has ``weekday_samples`` days), two habits are learned, robustly (median, and
1.4826 × the median absolute deviation, at least ``min_spread`` minutes):

- **first activity**: the time of the first event after ``wake_from`` (04:00). It is a morning
  signal only when the source sees something after ``wake_from`` on at least ``regular_share``
  (90 %) of days, its spread is at most ``max_spread`` (60 min), and the morning rule below,
  replayed on the learning days, would have fired on at most ``max_false_share`` (5 %) of them:
  a door opened on some mornings and some afternoons is not a morning signal;
- **pause by time of day**: every quarter hour, how long it had been since the source's last
  event that day (since midnight when none); the usual upper end is the ``pause_quantile`` (95th
  percentile) over the days, taken as the highest within half an hour either side, so that a
  meal or a nap a little later than usual is not unusual. The usual time of the day's last event
  ends the waking hours.

``check_inactivity`` fires, per source, when ``now`` is past the usual first activity + max(k ×
spread, ``margin``) with no event since ``wake_from`` today (only for a source with a morning
signal: "nothing yet today" is judged by that rule alone); or, once the source has seen something
today after ``wake_from`` and until its usual last event, when today's pause so far is
longer than the usual upper end at this time of day + max(``margin``, ``pause_slack`` (25 %) of
that upper end: a long pause is known less precisely than a short one). Where the usual upper end
is over ``max_pause`` (4 h), the source says too little about inactivity and is not judged by its
pauses (a door used for outings only, a meter between meals). This compares like with like:
today's pause so far against past days' pauses so far at the same time. An alert starts when the
silence began (the last event), so repeated checks give the same alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid
from zhishe.energy.detect import Alert, clock_text
from zhishe.energy.tariff import day_type

__all__ = [
    "DOOR_MORNING",
    "DOOR_PAUSE",
    "MESSAGES",
    "MOTION_MORNING",
    "MOTION_PAUSE",
    "USE_MORNING",
    "USE_PAUSE",
    "Activity",
    "ActivityKind",
    "Habit",
    "Routine",
    "SourceRoutine",
    "check_inactivity",
    "inactivity",
    "learn_routine",
]

ActivityKind = Literal["motion", "door", "use"]

MOTION_MORNING = "no motion in the {place} since {since}; usually {usual} ± {spread} min"
DOOR_MORNING = "the {place} has not opened since {since}; usually first at {usual} ± {spread} min"
USE_MORNING = "no {place} use since {since}; usually first at {usual} ± {spread} min"
MOTION_PAUSE = "no motion in the {place} for {gap} min, since {since}; at this time of day a pause is usually at most {usual} min"
DOOR_PAUSE = (
    "the {place} has not opened for {gap} min, since {since}; "
    "at this time of day a pause is usually at most {usual} min"
)
USE_PAUSE = (
    "no {place} use for {gap} min, since {since}; at this time of day a pause is usually at most {usual} min"
)
MESSAGES = (MOTION_MORNING, DOOR_MORNING, USE_MORNING, MOTION_PAUSE, DOOR_PAUSE, USE_PAUSE)

_MORNING = {"motion": MOTION_MORNING, "door": DOOR_MORNING, "use": USE_MORNING}
_PAUSE = {"motion": MOTION_PAUSE, "door": DOOR_PAUSE, "use": USE_PAUSE}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_STEP = 15  # minutes between the times of day at which pauses are learned
_POINTS = 24 * 60 // _STEP + 1  # 00:00, 00:15, … 24:00
_SMOOTH = 2  # points either side (half an hour)
_MAD_TO_SD = 1.4826


@dataclass(frozen=True, slots=True)
class Activity:
    """One source of activity: where it is, what it senses, and when it saw something."""

    place: str
    kind: ActivityKind
    times: Sequence[datetime]


@dataclass(frozen=True, slots=True)
class Habit:
    """What a source usually sees on one kind of day (minutes after local midnight)."""

    key: str
    days: int
    first_days: int
    first_usual: float | None
    first_spread: float
    last_usual: float | None
    #: The usual upper end of the pause so far, every quarter hour from 00:00 to 24:00.
    pause_upper: tuple[float, ...]

    def pause_limit(self, minute: float) -> float:
        """The usual upper end of the pause so far at ``minute`` after midnight."""
        return self.pause_upper[min(max(round(minute / _STEP), 0), _POINTS - 1)]


@dataclass(frozen=True, slots=True)
class SourceRoutine:
    """A source's habits by kind of day ("weekday", "weekend", or "mon" … "sun")."""

    place: str
    kind: ActivityKind
    habits: Mapping[str, Habit]


@dataclass(frozen=True, slots=True)
class Routine:
    """The household's routine, learned for checking on ``today``."""

    today: date
    tz: tzinfo
    days: int
    wake_from: time
    sources: tuple[SourceRoutine, ...]
    holidays: frozenset[date]
    workdays: frozenset[date]
    #: The morning rule's allowance: max(k × spread, margin) minutes after the usual time.
    k: float = 3.0
    margin: float = 30.0

    def habit(self, source: SourceRoutine, day: date) -> Habit | None:
        """The habit that applies on ``day``: its own day of the week when learned, else its day type."""
        if day not in self.holidays and day not in self.workdays:
            own = source.habits.get(_DAYS[day.weekday()])
            if own is not None:
                return own
        return source.habits.get(day_type(day, holidays=self.holidays, workdays=self.workdays))


def learn_routine(
    activities: Sequence[Activity],
    *,
    today: date,
    tz: tzinfo,
    weeks: int = 8,
    min_days: int = 14,
    wake_from: time = time(4),
    holidays: Collection[date] = (),
    workdays: Collection[date] = (),
    min_spread: float = 10.0,
    max_spread: float = 60.0,
    regular_share: float = 0.9,
    pause_quantile: float = 0.95,
    max_false_share: float = 0.05,
    k: float = 3.0,
    margin: float = 30.0,
    min_samples: int = 4,
    weekday_samples: int = 6,
) -> Routine:
    """Learn each source's habits from the ``weeks`` weeks before ``today`` (see the module doc)."""
    if min_days < 2 or weeks * 7 < min_days:
        raise Invalid(f"learning needs min_days >= 2 within weeks × 7 days, not {min_days} in {weeks} weeks")
    first_day = today - timedelta(days=7 * weeks)
    per_source = [_by_day(a, tz, first_day, today) for a in activities]
    home = sorted({d for days in per_source for d in days})
    if len(home) < min_days:
        raise Invalid(
            f"only {len(home)} days with activity in the {weeks} weeks before {today.isoformat()}: at least "
            f"{min_days} are needed to learn the household's routine",
            detail={"days": len(home), "needed": min_days},
        )
    holiday_set, workday_set = frozenset(holidays), frozenset(workdays)
    groups: dict[str, list[date]] = defaultdict(list)
    for day in home:
        groups[day_type(day, holidays=holiday_set, workdays=workday_set)].append(day)
        if day not in holiday_set and day not in workday_set:
            groups[_DAYS[day.weekday()]].append(day)
    wake = wake_from.hour * 60 + wake_from.minute
    sources = []
    for activity, days in zip(activities, per_source, strict=True):
        habits = {}
        for key, members in groups.items():
            needed = weekday_samples if key in _DAYS else min_samples
            if len(members) >= needed:
                habits[key] = _habit(
                    key,
                    members,
                    days,
                    wake=wake,
                    min_spread=min_spread,
                    max_spread=max_spread,
                    regular_share=regular_share,
                    pause_quantile=pause_quantile,
                    max_false_share=max_false_share,
                    allowance=(k, margin),
                    min_samples=min_samples,
                )
        sources.append(SourceRoutine(place=activity.place, kind=activity.kind, habits=habits))
    return Routine(
        today=today,
        tz=tz,
        days=len(home),
        wake_from=wake_from,
        sources=tuple(sources),
        holidays=holiday_set,
        workdays=workday_set,
        k=k,
        margin=margin,
    )


def check_inactivity(
    routine: Routine,
    activities: Sequence[Activity],
    *,
    now: datetime,
    pause_slack: float = 0.25,
    max_pause: float = 240.0,
) -> list[Alert]:
    """Alerts for the sources that are unusually silent at ``now`` (see the module doc), with the
    allowance (``k``, ``margin``) the routine was learned with."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise Invalid(f"now is {now.isoformat()} without a timezone")
    local_now = now.astimezone(routine.tz)
    if local_now.date() != routine.today:
        raise Invalid(
            f"the routine was learned for {routine.today.isoformat()}, not {local_now.date().isoformat()}: "
            "learn it again for that day"
        )
    midnight = datetime.combine(routine.today, time(0), tzinfo=routine.tz).astimezone(UTC)
    minute_now = (now - midnight) / timedelta(minutes=1)
    wake = routine.wake_from.hour * 60 + routine.wake_from.minute
    seen = {(a.place, a.kind): a for a in activities}
    alerts = []
    for source in routine.sources:
        habit = routine.habit(source, routine.today)
        if habit is None:
            continue
        activity = seen.get((source.place, source.kind))
        past = [t for t in (activity.times if activity else ()) if t <= now]
        last = max(past).astimezone(UTC) if past else None
        today = sorted((t - midnight) / timedelta(minutes=1) for t in past if t >= midnight)
        since = clock_text(last, tz=routine.tz, reference=now) if last else "—"
        start = last or midnight
        if habit.first_usual is not None and not any(m >= wake for m in today):
            allowance = max(routine.k * habit.first_spread, routine.margin)
            if minute_now >= habit.first_usual + allowance:
                alerts.append(
                    Alert(
                        kind="inactivity",
                        subject=source.place,
                        start=start,
                        end=now,
                        severity="warning",
                        reason_template=_MORNING[source.kind],
                        params={
                            "place": source.place,
                            "since": since,
                            "usual": _hhmm(habit.first_usual),
                            "spread": round(habit.first_spread),
                        },
                    )
                )
            continue
        awake = [m for m in today if m >= wake]
        if not awake or habit.last_usual is None or minute_now > habit.last_usual:
            continue
        pause = minute_now - awake[-1]
        usual = habit.pause_limit(minute_now)
        if usual <= max_pause and pause > usual + max(routine.margin, pause_slack * usual):
            alerts.append(
                Alert(
                    kind="inactivity",
                    subject=source.place,
                    start=start,
                    end=now,
                    severity="warning",
                    reason_template=_PAUSE[source.kind],
                    params={
                        "place": source.place,
                        "gap": round(pause),
                        "since": since,
                        "usual": round(usual),
                    },
                )
            )
    return alerts


def inactivity(
    activities: Sequence[Activity],
    *,
    now: datetime,
    tz: tzinfo,
    weeks: int = 8,
    min_days: int = 14,
    holidays: Collection[date] = (),
    workdays: Collection[date] = (),
    k: float = 3.0,
    margin: float = 30.0,
) -> list[Alert]:
    """Learn the routine from the weeks before today and check ``now`` against it."""
    routine = learn_routine(
        activities,
        today=now.astimezone(tz).date(),
        tz=tz,
        weeks=weeks,
        min_days=min_days,
        holidays=holidays,
        workdays=workdays,
        k=k,
        margin=margin,
    )
    return check_inactivity(routine, activities, now=now)


# --- learning ------------------------------------------------------------------------------------


def _by_day(activity: Activity, tz: tzinfo, first: date, today: date) -> dict[date, list[float]]:
    """The source's events before ``today`` from ``first`` on, as minutes after local midnight."""
    days: dict[date, list[float]] = defaultdict(list)
    for i, moment in enumerate(activity.times):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise Invalid(f"{activity.place} event {i} at {moment.isoformat()} has no timezone")
        local = moment.astimezone(tz)
        day = local.date()
        if first <= day < today:
            days[day].append(local.hour * 60 + local.minute + local.second / 60)
    for minutes in days.values():
        minutes.sort()
    return days


def _habit(
    key: str,
    members: list[date],
    days: dict[date, list[float]],
    *,
    wake: int,
    min_spread: float,
    max_spread: float,
    regular_share: float,
    pause_quantile: float,
    max_false_share: float,
    allowance: tuple[float, float],
    min_samples: int,
) -> Habit:
    firsts = [
        next(m for m in days[d] if m >= wake) for d in members if any(m >= wake for m in days.get(d, ()))
    ]
    first_usual: float | None = None
    first_spread = min_spread
    if len(firsts) >= max(min_samples, regular_share * len(members)):
        usual, spread = _robust(np.asarray(firsts), min_spread)
        due = usual + max(allowance[0] * spread, allowance[1])
        would_fire = len(members) - sum(1 for m in firsts if m < due)  # days late or without any
        if spread <= max_spread and would_fire <= max_false_share * len(members):
            first_usual, first_spread = usual, spread
    lasts = [days[d][-1] for d in members if days.get(d)]
    last_usual = float(np.median(lasts)) if len(lasts) >= min_samples else None
    so_far = np.stack([_pauses_so_far(days.get(d, [])) for d in members])
    upper = np.quantile(so_far, pause_quantile, axis=0)
    padded = np.pad(upper, _SMOOTH, mode="edge")
    smoothed = np.max([padded[i : i + _POINTS] for i in range(2 * _SMOOTH + 1)], axis=0)
    return Habit(
        key=key,
        days=len(members),
        first_days=len(firsts),
        first_usual=first_usual,
        first_spread=first_spread,
        last_usual=last_usual,
        pause_upper=tuple(smoothed.tolist()),
    )


def _pauses_so_far(minutes: list[float]) -> npt.NDArray[np.float64]:
    """Every quarter hour of a day, the minutes since the last event (since midnight when none)."""
    points = np.arange(_POINTS, dtype=np.float64) * _STEP
    events = np.asarray(minutes, dtype=np.float64)
    if not len(events):
        return points
    before = np.searchsorted(events, points, side="right")
    last = np.where(before > 0, events[np.maximum(before - 1, 0)], 0.0)
    result: npt.NDArray[np.float64] = points - last
    return result


def _robust(values: npt.NDArray[np.float64], floor: float) -> tuple[float, float]:
    middle = float(np.median(values))
    return middle, max(_MAD_TO_SD * float(np.median(np.abs(values - middle))), floor)


def _hhmm(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole // 60:02d}:{whole % 60:02d}"

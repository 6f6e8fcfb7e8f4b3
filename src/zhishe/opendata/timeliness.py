"""Timeliness of open data: release cadences, overdue releases, missing periods, definition changes.

Cadences are the catalog's short names (``hourly daily weekly monthly quarterly annual`` and the
non-periodic ``continuous irregular never``); ``yearly`` is read as ``annual``, and the EU frequency
authority IRIs (``…/frequency/DAILY``) are understood too. Each has its ISO 8601 period
(``PT1H``, ``P1D``, ``P1W``, ``P1M``, ``P3M``, ``P1Y``) and its EU frequency IRI, which DCAT uses.

Calendar arithmetic happens in the platform time zone (``tz``), on wall-clock time: a monthly
release published on 31 January is next due on 29 February in a leap year (the day is clamped to
the month's end), a quarterly one three calendar months later. Results are aware UTC datetimes.
Non-periodic cadences are never due and never overdue.

`missing_periods` finds the gaps of a time column at a resolution: the periods between its first
and last value that hold no row. Periods start at calendar boundaries in ``tz`` (ISO weeks start
on Monday). It runs vectorised (Arrow compute and numpy: floor each value to its period number,
unique, sort, diff), about a second for ten million values. Naive values are read as wall-clock
time in ``tz``. In a zone with daylight saving time, the hour skipped in spring is reported as a
missing hourly period; Asia/Shanghai has had no DST since 1991.

`schema_changes` compares the columns of two releases. A *definition change* is one that can break
a consumer or silently change the meaning of a value: a removed column, a changed type or a changed
unit. An added column or an edited description is not (old queries still work and mean the same).
A renamed column shows as one removed and one added, so it is a definition change.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zhishe.core.errors import Invalid

__all__ = [
    "CADENCES",
    "FREQUENCY_IRI",
    "MAX_RANGES",
    "RESOLUTIONS",
    "Cadence",
    "Change",
    "Gaps",
    "Period",
    "cadence_of",
    "infer_resolution",
    "is_definition_change",
    "missing_periods",
    "next_due",
    "overdue_days",
    "schema_changes",
]

FREQUENCY_IRI = "http://publications.europa.eu/resource/authority/frequency/"
#: Gap ranges `missing_periods` lists at most (the totals still count all of them).
MAX_RANGES = 100

_Unit = Literal["hour", "day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a dataset is released: its period and its EU frequency IRI."""

    name: str
    #: ISO 8601 duration of one period, None when the cadence is not periodic.
    duration: str | None
    #: The EU frequency authority IRI (``dct:accrualPeriodicity``).
    frequency: str
    #: The period in calendar units: (unit, count), None when not periodic.
    step: tuple[_Unit, int] | None

    @property
    def periodic(self) -> bool:
        """True when releases are expected at a regular period."""
        return self.step is not None


CADENCES: dict[str, Cadence] = {
    c.name: c
    for c in (
        Cadence("hourly", "PT1H", FREQUENCY_IRI + "HOURLY", ("hour", 1)),
        Cadence("daily", "P1D", FREQUENCY_IRI + "DAILY", ("day", 1)),
        Cadence("weekly", "P1W", FREQUENCY_IRI + "WEEKLY", ("week", 1)),
        Cadence("monthly", "P1M", FREQUENCY_IRI + "MONTHLY", ("month", 1)),
        Cadence("quarterly", "P3M", FREQUENCY_IRI + "QUARTERLY", ("month", 3)),
        Cadence("annual", "P1Y", FREQUENCY_IRI + "ANNUAL", ("month", 12)),
        Cadence("continuous", None, FREQUENCY_IRI + "UPDATE_CONT", None),
        Cadence("irregular", None, FREQUENCY_IRI + "IRREG", None),
        Cadence("never", None, FREQUENCY_IRI + "NEVER", None),
    )
}
#: The periodic cadences, which are also the resolutions `missing_periods` understands.
RESOLUTIONS = tuple(name for name, c in CADENCES.items() if c.periodic)

_ALIASES = {
    "yearly": "annual",
    "cont": "continuous",
    "update_cont": "continuous",
    "irreg": "irregular",
    "pt1h": "hourly",
    "p1d": "daily",
    "p1w": "weekly",
    "p7d": "weekly",
    "p1m": "monthly",
    "p3m": "quarterly",
    "p1y": "annual",
    "p12m": "annual",
}


def cadence_of(name: str) -> Cadence:
    """The cadence named `name` (a short name, ISO 8601 duration or EU frequency IRI); else `Invalid`."""
    key = name.strip().rsplit("/", 1)[-1].lower()
    key = _ALIASES.get(key, key)
    try:
        return CADENCES[key]
    except KeyError:
        raise Invalid(
            f"unknown cadence {name!r}; use one of {', '.join(CADENCES)}", detail={"parameter": "cadence"}
        ) from None


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {tz!r}", detail={"parameter": "tz"}) from None


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment


def _add_months(local: datetime, months: int) -> datetime:
    """`local` moved by whole calendar months, the day clamped to the target month's end."""
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)


def _step(moment: datetime, cadence: Cadence, zone: ZoneInfo, times: int = 1) -> datetime:
    """`moment` moved by `times` periods of `cadence`, on wall-clock time in `zone`; UTC."""
    assert cadence.step is not None
    unit, count = cadence.step
    local = moment.astimezone(zone).replace(tzinfo=None)
    if unit == "month":
        local = _add_months(local, count * times)
    else:
        local += {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[unit] * (
            count * times
        )
    return local.replace(tzinfo=zone).astimezone(UTC)


def next_due(
    last: datetime, cadence: str | None, tz: str = "Asia/Shanghai", *, grace: timedelta = timedelta(0)
) -> datetime | None:
    """When the release after one published at `last` is due (plus `grace`); None when not periodic.

    A missing or empty `cadence` counts as irregular.
    """
    _aware(last, "last")
    if not cadence:
        return None
    found = cadence_of(cadence)
    if not found.periodic:
        return None
    return _step(last, found, _zone(tz)) + grace


def overdue_days(
    last: datetime,
    cadence: str | None,
    now: datetime,
    tz: str = "Asia/Shanghai",
    *,
    grace: timedelta = timedelta(0),
) -> int:
    """Days the next release is late by at `now`: 0 when up to date, else whole days rounded up.

    One second late is one day overdue (use `grace` to allow slack). Irregular, continuous and
    never-updated datasets are never overdue.
    """
    _aware(now, "now")
    due = next_due(last, cadence, tz, grace=grace)
    if due is None or now <= due:
        return 0
    return math.ceil((now - due) / timedelta(days=1))


# --- missing periods ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A run of consecutive missing periods: ``[start, end)`` in `tz`, `count` periods long."""

    start: datetime
    end: datetime
    count: int

    def to_json(self) -> dict[str, Any]:
        """As a JSON-able dict (ISO 8601 with offset)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "count": self.count}


@dataclass(frozen=True, slots=True)
class Gaps:
    """The missing periods of a time column: the first `MAX_RANGES` runs and the totals."""

    resolution: str
    ranges: list[Period]
    #: Runs of missing periods in all (`ranges` may hold fewer).
    total_ranges: int
    #: Missing periods in all.
    total_missing: int
    #: Distinct periods that hold at least one row.
    present: int

    @property
    def truncated(self) -> bool:
        """True when there are more runs than `ranges` lists."""
        return self.total_ranges > len(self.ranges)

    def to_json(self) -> dict[str, Any]:
        """As a JSON-able dict."""
        return {
            "resolution": self.resolution,
            "ranges": [r.to_json() for r in self.ranges],
            "total_ranges": self.total_ranges,
            "total_missing": self.total_missing,
            "present": self.present,
            "truncated": self.truncated,
        }


_US_PER = {"hour": 3_600_000_000, "day": 86_400_000_000}
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - wall-clock arithmetic, zone attached afterwards


def _resolution(name: str) -> Cadence:
    found = cadence_of(name)
    if not found.periodic:
        raise Invalid(
            f"{name!r} is not a resolution; use one of {', '.join(RESOLUTIONS)}",
            detail={"parameter": "resolution"},
        )
    return found


def _as_arrow(values: pa.Array | pa.ChunkedArray | Iterable[datetime | date], zone: ZoneInfo) -> pa.Array:
    """Values as one Arrow array of dates or timestamps (Python values converted, nulls dropped)."""
    if isinstance(values, pa.ChunkedArray):
        array = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, pa.Array):
        array = values
    else:
        items = [v for v in values if v is not None]
        if all(type(v) is date for v in items) and items:
            array = pa.array(items, pa.date32())
        else:
            moments = []
            for v in items:
                if not isinstance(v, datetime):
                    v = datetime(v.year, v.month, v.day)  # noqa: DTZ001 - made aware on the next line
                moments.append(v if v.tzinfo is not None else v.replace(tzinfo=zone))
            array = pa.array(moments, pa.timestamp("us", tz="UTC"))
    if not (pa.types.is_timestamp(array.type) or pa.types.is_date(array.type)):
        raise Invalid(f"a time column must hold dates or timestamps, not {array.type}")
    return array.drop_null()


def _local_micros(array: pa.Array, zone: ZoneInfo) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Wall-clock time in `zone` as microseconds since 1970-01-01 (local)."""
    if pa.types.is_date(array.type):
        days = array.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False)
        return np.asarray(days, dtype=np.int64) * _US_PER["day"]
    micros = array.cast(pa.timestamp("us", tz=array.type.tz), safe=False)
    if micros.type.tz is not None:
        micros = pc.local_timestamp(micros.cast(pa.timestamp("us", tz=zone.key)))
    return np.asarray(micros.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _distinct(values: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The distinct values, sorted (hashing first: fast when there are few of them)."""
    return np.sort(np.asarray(pc.unique(pa.array(values)).to_numpy(), dtype=np.int64))


def _period_numbers(
    micros: np.ndarray[Any, np.dtype[np.int64]], cadence: Cadence
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The distinct periods of the values, sorted, as integers: consecutive periods are consecutive."""
    assert cadence.step is not None
    unit, count = cadence.step
    if unit == "hour":
        return _distinct(micros // _US_PER["hour"])
    days = _distinct(micros // _US_PER["day"])
    if unit == "day":
        return days
    if unit == "week":
        return np.unique((days + 3) // 7)  # 1970-01-01 was a Thursday; weeks start on Monday
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return np.unique(months // count)


def _period_start(number: int, cadence: Cadence, zone: ZoneInfo) -> datetime:
    """The aware start, in `zone`, of period `number` (see `_period_numbers`)."""
    assert cadence.step is not None
    unit, count = cadence.step
    if unit == "hour":
        local = _EPOCH + timedelta(hours=number)
    elif unit == "day":
        local = _EPOCH + timedelta(days=number)
    elif unit == "week":
        local = _EPOCH + timedelta(days=number * 7 - 3)
    else:
        year, month = divmod(number * count, 12)
        local = datetime(1970 + year, month + 1, 1)  # noqa: DTZ001 - zone attached below
    return local.replace(tzinfo=zone)


def missing_periods(
    values: pa.Array | pa.ChunkedArray | Iterable[datetime | date],
    resolution: str,
    tz: str = "Asia/Shanghai",
    *,
    limit: int = MAX_RANGES,
) -> Gaps:
    """The periods at `resolution` between the first and last of `values` that hold no value.

    `values` is an Arrow date or timestamp array (or chunked array) or Python dates/datetimes, in
    any order, with duplicates and nulls. The runs of missing periods are listed first to last, at
    most `limit` of them; the totals count all. Empty input has no gaps.
    """
    cadence = _resolution(resolution)
    zone = _zone(tz)
    array = _as_arrow(values, zone)
    if len(array) == 0:
        return Gaps(cadence.name, [], 0, 0, 0)
    present = _period_numbers(_local_micros(array, zone), cadence)
    steps = np.diff(present)
    where = np.flatnonzero(steps > 1)
    ranges = [
        Period(
            start=_period_start(int(present[i]) + 1, cadence, zone),
            end=_period_start(int(present[i + 1]), cadence, zone),
            count=int(steps[i]) - 1,
        )
        for i in where[:limit]
    ]
    return Gaps(cadence.name, ranges, len(where), int((steps[where] - 1).sum()), len(present))


#: Median steps that identify a resolution, as (resolution, shortest, longest).
_TYPICAL_STEPS = (
    ("hourly", timedelta(minutes=50), timedelta(minutes=70)),
    ("daily", timedelta(hours=20), timedelta(hours=28)),
    ("weekly", timedelta(days=6), timedelta(days=8)),
    ("monthly", timedelta(days=27), timedelta(days=32)),
    ("quarterly", timedelta(days=88), timedelta(days=93)),
    ("annual", timedelta(days=360), timedelta(days=370)),
)


def infer_resolution(
    values: pa.Array | pa.ChunkedArray | Iterable[datetime | date], tz: str = "Asia/Shanghai"
) -> str | None:
    """The resolution a time series seems to have, from the median step between its distinct
    values; None when there are fewer than two or the step matches no resolution."""
    zone = _zone(tz)
    array = _as_arrow(values, zone)
    if len(array) < 2:
        return None
    micros = _local_micros(array, zone)
    steps = np.diff(micros)
    if (steps < 0).any():
        steps = np.diff(np.sort(micros))
    steps = steps[steps > 0]
    if len(steps) == 0:
        return None
    median = timedelta(microseconds=float(np.median(steps)))
    for name, shortest, longest in _TYPICAL_STEPS:
        if shortest <= median <= longest:
            return name
    return None


# --- schema changes -------------------------------------------------------------------------------

ChangeKind = Literal["added", "removed", "type_changed", "unit_changed", "description_changed"]
#: Kinds of change that make a new release a definition change.
DEFINITION_CHANGES: frozenset[str] = frozenset({"removed", "type_changed", "unit_changed"})


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the columns of two releases."""

    kind: ChangeKind
    column: str
    old: Any = None
    new: Any = None

    @property
    def is_definition_change(self) -> bool:
        """True for a removed column or a changed type or unit."""
        return self.kind in DEFINITION_CHANGES

    def to_json(self) -> dict[str, Any]:
        """As a JSON-able dict."""
        return {"kind": self.kind, "column": self.column, "old": self.old, "new": self.new}


def _text(column: Mapping[str, Any], key: str) -> str:
    value = column.get(key)
    return "" if value is None else str(value).strip()


def schema_changes(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[Change]:
    """The differences from columns `old` to `new` (dicts with name, type, unit, description).

    Columns are matched by name. Changes to kept columns and removals come in the old order,
    then additions in the new order. Types compare case-insensitively; units and descriptions
    after trimming spaces, a missing value being the same as an empty one.
    """
    before = {str(c["name"]): c for c in old}
    after = {str(c["name"]): c for c in new}
    changes: list[Change] = []
    for name, was in before.items():
        now = after.get(name)
        if now is None:
            changes.append(Change("removed", name, old=_text(was, "type") or None))
            continue
        if _text(was, "type").lower() != _text(now, "type").lower():
            changes.append(Change("type_changed", name, _text(was, "type"), _text(now, "type")))
        if _text(was, "unit") != _text(now, "unit"):
            changes.append(Change("unit_changed", name, _text(was, "unit"), _text(now, "unit")))
        if _text(was, "description") != _text(now, "description"):
            changes.append(
                Change("description_changed", name, _text(was, "description"), _text(now, "description"))
            )
    changes += [
        Change("added", name, new=_text(c, "type") or None) for name, c in after.items() if name not in before
    ]
    return changes


def is_definition_change(changes: Iterable[Change]) -> bool:
    """True when any change removes a column or changes a type or unit (see the module docstring)."""
    return any(c.is_definition_change for c in changes)

"""Electricity tariffs and the cost of consumption under them.

A ``Tariff`` is in force on local dates ``valid_from`` ≤ day < ``valid_to``. It prices each
time-of-use period (峰 peak, 平 flat, 谷 valley …) per kWh; its ``Schedule``\\ s say which period
holds each minute of the day, per day type (weekday or weekend, holidays counting as weekend and
make-up working days as weekdays) and per month (seasons). Tiers (阶梯电价) count consumption from
the start of the billing cycle (a month, or a year starting in ``cycle_start_month``) and either
add a surcharge to the period price (``tier_mode="surcharge"``, as Chinese residential tariffs do:
e.g. 0–2,760 kWh a year at the period price, 2,760–4,800 kWh +0.05, above +0.30) or replace it
(``tier_mode="replace"``: the tier's amount is the price per kWh).

``cost`` prices consumption buckets: each bucket's kWh is taken as even over its duration and cut
at period edges, local midnights (a tariff change applies from a local date) and tier thresholds.
Money is ``decimal.Decimal``. Bucket kWh are first rounded to 0.000001 kWh. Each line of the bill
(one tariff, period, tier and unit price) sums its kWh exactly and is rounded once to 0.01 at its
end (half up); the total is the sum of the rounded lines. Bucket amounts are shown to 0.0001 and
may differ from the lines by that rounding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, Literal, TypeVar

from zhishe.core.errors import Invalid

__all__ = [
    "ALL_MONTHS",
    "BucketCost",
    "Cost",
    "CostLine",
    "DayType",
    "Schedule",
    "Tariff",
    "Tier",
    "Window",
    "cost",
    "day_type",
    "tariff_from_definition",
    "validate_tariffs",
]

DayType = Literal["weekday", "weekend"]
ALL_MONTHS: frozenset[int] = frozenset(range(1, 13))
_MINUTES_PER_DAY = 24 * 60
_CENT = Decimal("0.01")
_SHOWN = Decimal("0.0001")
_KWH = Decimal("0.000001")
_K = TypeVar("_K")
_STEPS = {"15min": timedelta(minutes=15), "1h": timedelta(hours=1)}


def day_type(day: date, *, holidays: Collection[date] = (), workdays: Collection[date] = ()) -> DayType:
    """Weekday or weekend: public holidays count as weekend, make-up working days (调休) as weekday."""
    if day in workdays:
        return "weekday"
    if day in holidays or day.weekday() >= 5:
        return "weekend"
    return "weekday"


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the day priced as ``period``, from ``start`` to ``end`` (exclusive); it wraps
    past midnight when ``end`` is earlier than ``start`` and is the whole day when they are equal."""

    period: str
    start: time
    end: time

    def label(self) -> str:
        """The window as "period HH:MM-HH:MM"."""
        return f"{self.period} {self.start:%H:%M}-{self.end:%H:%M}"

    def spans(self) -> list[tuple[int, int]]:
        """The minutes of the day it covers, as [start, end) pairs without wrapping."""
        a, b = _minute(self.start), _minute(self.end)
        if a < b:
            return [(a, b)]
        return [(a, _MINUTES_PER_DAY), (0, b)] if b else [(a, _MINUTES_PER_DAY)]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Which period holds each minute of the day, on the given day type and months."""

    windows: tuple[Window, ...]
    days: Literal["all", "weekday", "weekend"] = "all"
    months: frozenset[int] = ALL_MONTHS

    def label(self) -> str:
        """A short name for messages: its days and, for a season, its months."""
        days = "every-day" if self.days == "all" else self.days
        if self.months == ALL_MONTHS:
            return f"{days} schedule"
        return f"{days} schedule for months {','.join(str(m) for m in sorted(self.months))}"


@dataclass(frozen=True, slots=True)
class Tier:
    """A consumption tier: it ends at ``up_to`` kWh counted in the cycle (None: no end) and adds
    ``amount`` per kWh (surcharge mode) or costs ``amount`` per kWh (replace mode)."""

    up_to: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class Tariff:
    """A priced tariff in force on local dates ``valid_from`` ≤ day < ``valid_to`` (None: open)."""

    name: str
    valid_from: date
    prices: Mapping[str, Decimal]
    schedules: tuple[Schedule, ...]
    valid_to: date | None = None
    family: str = "default"
    tiers: tuple[Tier, ...] = ()
    tier_mode: Literal["surcharge", "replace"] = "surcharge"
    cycle: Literal["month", "year"] = "year"
    cycle_start_month: int = 1
    currency: str = "CNY"

    def __post_init__(self) -> None:
        _validate(self)

    def in_force(self, day: date) -> bool:
        """Whether the tariff applies on this local date."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def cycle_start(self, day: date) -> date:
        """The first day of the billing cycle that holds ``day``."""
        if self.cycle == "month":
            return day.replace(day=1)
        year = day.year if day.month >= self.cycle_start_month else day.year - 1
        return date(year, self.cycle_start_month, 1)

    def schedule_for(self, day: date, kind: DayType) -> Schedule:
        """The schedule that applies on ``day`` of day type ``kind``."""
        for schedule in self.schedules:
            if schedule.days in ("all", kind) and day.month in schedule.months:
                return schedule
        raise Invalid(f"tariff {self.name}: no schedule for {kind} days in month {day.month}")  # validated

    def definition(self) -> dict[str, Any]:
        """Periods, tiers and prices as JSON-ready data (what ``tariff_from_definition`` reads)."""
        return {
            "prices": {period: str(price) for period, price in self.prices.items()},
            "schedules": [
                {
                    "days": s.days,
                    "months": sorted(s.months),
                    "windows": [[w.period, f"{w.start:%H:%M}", f"{w.end:%H:%M}"] for w in s.windows],
                }
                for s in self.schedules
            ],
            "tiers": [
                {"up_to": None if t.up_to is None else str(t.up_to), "amount": str(t.amount)}
                for t in self.tiers
            ],
            "tier_mode": self.tier_mode,
            "cycle": self.cycle,
            "cycle_start_month": self.cycle_start_month,
            "currency": self.currency,
        }

    def unit_price(self, period: str, tier: int) -> Decimal:
        """The price per kWh of ``period`` in tier ``tier`` (1-based; 1 when there are no tiers)."""
        if not self.tiers:
            return self.prices[period]
        amount = self.tiers[tier - 1].amount
        return amount if self.tier_mode == "replace" else self.prices[period] + amount


@dataclass(frozen=True, slots=True)
class CostLine:
    """One line of the bill: the kWh of one tariff, period and tier, and their amount (to 0.01)."""

    tariff: str
    period: str
    tier: int
    unit_price: Decimal
    kwh: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class BucketCost:
    """What one bucket cost (shown to 0.0001; the bill's lines are what is rounded to 0.01)."""

    start: datetime
    kwh: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Cost:
    """The priced consumption: per bucket, per line, and in total."""

    buckets: tuple[BucketCost, ...]
    lines: tuple[CostLine, ...]
    total: Decimal
    kwh: Decimal
    currency: str = "CNY"
    tier_used: Mapping[date, Decimal] = field(default_factory=dict)

    @property
    def by_period(self) -> dict[str, Decimal]:
        """The amount per period (sums of rounded lines)."""
        return _sum_by((line.period, line.amount) for line in self.lines)

    @property
    def by_tier(self) -> dict[int, Decimal]:
        """The amount per tier (sums of rounded lines)."""
        return _sum_by((line.tier, line.amount) for line in self.lines)

    @property
    def kwh_by_tier(self) -> dict[int, Decimal]:
        """The kWh per tier."""
        return _sum_by((line.tier, line.kwh) for line in self.lines)


def tariff_from_definition(
    definition: Mapping[str, Any],
    *,
    name: str,
    valid_from: date,
    valid_to: date | None = None,
    family: str = "default",
) -> Tariff:
    """A tariff from its stored definition (``Tariff.definition()``); refuses a malformed one."""
    where = f"tariff {name}"
    try:
        prices = {
            str(k): _decimal(v, f"{where}: price of {k}") for k, v in dict(definition["prices"]).items()
        }
        schedules = tuple(
            Schedule(
                windows=tuple(
                    Window(str(p), _clock_time(a, where), _clock_time(b, where))
                    for p, a, b in item["windows"]
                ),
                days=item.get("days", "all"),
                months=frozenset(int(m) for m in item.get("months", range(1, 13))),
            )
            for item in definition["schedules"]
        )
        tiers = tuple(
            Tier(
                up_to=None if t.get("up_to") is None else _decimal(t["up_to"], f"{where}: tier {n} up_to"),
                amount=_decimal(t["amount"], f"{where}: tier {n} amount"),
            )
            for n, t in enumerate(definition.get("tiers", ()), start=1)
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"{where}: the definition is malformed ({exc!r})") from exc
    if any(s.days not in ("all", "weekday", "weekend") for s in schedules):
        raise Invalid(f"{where}: a schedule's days must be all, weekday or weekend")
    mode = definition.get("tier_mode", "surcharge")
    cycle = definition.get("cycle", "year")
    if mode not in ("surcharge", "replace"):
        raise Invalid(f"{where}: tier_mode must be surcharge or replace, not {mode!r}")
    if cycle not in ("month", "year"):
        raise Invalid(f"{where}: cycle must be month or year, not {cycle!r}")
    return Tariff(
        name=name,
        valid_from=valid_from,
        valid_to=valid_to,
        family=family,
        prices=prices,
        schedules=schedules,
        tiers=tiers,
        tier_mode=mode,
        cycle=cycle,
        cycle_start_month=int(definition.get("cycle_start_month", 1)),
        currency=str(definition.get("currency", "CNY")),
    )


def validate_tariffs(tariffs: Sequence[Tariff]) -> None:
    """Refuse tariffs of one family whose effective dates overlap (each tariff checks itself)."""
    families: dict[str, list[Tariff]] = defaultdict(list)
    for tariff in tariffs:
        families[tariff.family].append(tariff)
    for family, members in families.items():
        members.sort(key=lambda t: t.valid_from)
        for a, b in pairwise(members):
            if a.valid_to is None or b.valid_from < a.valid_to:
                raise Invalid(
                    f"tariffs {a.name} ({_range(a)}) and {b.name} ({_range(b)}) of family {family} "
                    f"overlap from {b.valid_from.isoformat()}",
                    detail={"family": family, "tariffs": [a.name, b.name]},
                )


def cost(
    buckets: Iterable[tuple[datetime, float | Decimal]],
    tariffs: Sequence[Tariff],
    *,
    tz: tzinfo,
    interval: Literal["15min", "1h", "1d"] = "15min",
    holidays: Collection[date] = (),
    workdays: Collection[date] = (),
    used_before: Decimal = Decimal(0),
) -> Cost:
    """The cost of consumption buckets (start, kWh) under the tariffs of one family.

    ``interval`` is the buckets' length (a ``1d`` bucket is a local day). ``used_before`` is the
    kWh already counted toward the tiers in the cycle of the first bucket, before it.
    """
    if not tariffs:
        raise Invalid("no tariff given: at least one is needed to price consumption")
    validate_tariffs(tariffs)
    if len({t.family for t in tariffs}) > 1:
        names = ", ".join(sorted({t.family for t in tariffs}))
        raise Invalid(f"tariffs of several families ({names}) given: price with one family at a time")
    if interval not in ("15min", "1h", "1d"):
        raise Invalid(f"interval must be 15min, 1h or 1d, not {interval!r}")
    rows = _checked_buckets(buckets)
    lines: dict[tuple[str, str, int, Decimal], Decimal] = defaultdict(Decimal)
    used: dict[date, Decimal] = {}
    cycle_key: tuple[str, date] | None = None
    counted = Decimal(used_before)
    priced: list[BucketCost] = []
    total_kwh = Decimal(0)
    for start, kwh in rows:
        end = _bucket_end(start, interval, tz)
        whole = Decimal((end - start) // timedelta(microseconds=1))
        bucket_amount = Decimal(0)
        for seg_start, seg_end, day, window in _segments(start, end, tariffs, tz, holidays, workdays):
            tariff = next(t for t in tariffs if t.in_force(day))
            key = (tariff.cycle, tariff.cycle_start(day))
            if key != cycle_key:
                if cycle_key is not None:
                    counted = Decimal(0)
                cycle_key = key
            part = kwh * Decimal((seg_end - seg_start) // timedelta(microseconds=1)) / whole
            for tier, portion in _tier_split(tariff, counted, part):
                price = tariff.unit_price(window.period, tier)
                lines[(tariff.name, window.period, tier, price)] += portion
                bucket_amount += portion * price
            counted += part
            used[key[1]] = counted
        priced.append(BucketCost(start=start, kwh=kwh, amount=bucket_amount.quantize(_SHOWN, ROUND_HALF_UP)))
        total_kwh += kwh
    bill = tuple(
        CostLine(
            tariff=name,
            period=period,
            tier=tier,
            unit_price=price,
            kwh=amount_kwh,
            amount=(amount_kwh * price).quantize(_CENT, ROUND_HALF_UP),
        )
        for (name, period, tier, price), amount_kwh in lines.items()
    )
    return Cost(
        buckets=tuple(priced),
        lines=bill,
        total=sum((line.amount for line in bill), Decimal(0)),
        kwh=total_kwh,
        currency=tariffs[0].currency,
        tier_used=used,
    )


# --- pricing helpers -----------------------------------------------------------------------------


def _checked_buckets(buckets: Iterable[tuple[datetime, float | Decimal]]) -> list[tuple[datetime, Decimal]]:
    rows: list[tuple[datetime, Decimal]] = []
    for i, (start, kwh) in enumerate(buckets):
        if start.tzinfo is None or start.utcoffset() is None:
            raise Invalid(f"bucket {i} starts at {start.isoformat()} without a timezone", detail={"index": i})
        value = Decimal(repr(kwh)) if isinstance(kwh, float) else Decimal(kwh)
        if not value.is_finite() or value < 0:
            raise Invalid(
                f"bucket {i} has {kwh!r} kWh: consumption is a finite number >= 0", detail={"index": i}
            )
        rows.append((start.astimezone(UTC), value.quantize(_KWH, ROUND_HALF_UP)))
    rows.sort(key=lambda r: r[0])
    for a, b in pairwise(rows):
        if a[0] == b[0]:
            raise Invalid(f"two buckets start at {a[0].isoformat()}: each bucket must appear once")
    return rows


def _bucket_end(start: datetime, interval: str, tz: tzinfo) -> datetime:
    if interval != "1d":
        return start + _STEPS[interval]
    local = start.astimezone(tz)
    return _local_midnight(local.date() + timedelta(days=1), tz)


def _segments(
    start: datetime,
    end: datetime,
    tariffs: Sequence[Tariff],
    tz: tzinfo,
    holidays: Collection[date],
    workdays: Collection[date],
) -> Iterable[tuple[datetime, datetime, date, Window]]:
    """The bucket cut at local midnights and period edges: (start, end, local day, window)."""
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        day = local.date()
        tariff = next((t for t in tariffs if t.in_force(day)), None)
        if tariff is None:
            raise Invalid(
                f"no tariff in force on {day.isoformat()} (local): consumption at {cursor.isoformat()} "
                "cannot be priced",
                detail={"day": day.isoformat()},
            )
        schedule = tariff.schedule_for(day, day_type(day, holidays=holidays, workdays=workdays))
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        window, until = _window_at(schedule, minute)
        boundary = (
            _local_midnight(day + timedelta(days=1), tz)
            if until >= _MINUTES_PER_DAY
            else datetime.combine(day, time(until // 60, until % 60), tzinfo=tz).astimezone(UTC)
        )
        stop = min(end, boundary)
        if stop <= cursor:  # a wall-clock edge that a clock change skipped: move on a minute
            stop = min(end, cursor + timedelta(minutes=1))
        yield cursor, stop, day, window
        cursor = stop


def _window_at(schedule: Schedule, minute: float) -> tuple[Window, int]:
    """The window holding ``minute`` of the day and the minute its span ends (1440 at midnight)."""
    for window in schedule.windows:
        for a, b in window.spans():
            if a <= minute < b:
                return window, b
    raise Invalid(f"no period at minute {minute:.0f} of the day")  # coverage is validated


def _tier_split(tariff: Tariff, counted: Decimal, kwh: Decimal) -> list[tuple[int, Decimal]]:
    """``kwh`` consumed after ``counted`` kWh of the cycle, split over the tiers (1-based)."""
    if not tariff.tiers:
        return [(1, kwh)]
    parts: list[tuple[int, Decimal]] = []
    low = Decimal(0)
    for number, tier in enumerate(tariff.tiers, start=1):
        high = tier.up_to
        top = counted + kwh if high is None else min(counted + kwh, high)
        portion = top - max(counted, low)
        if portion > 0:
            parts.append((number, portion))
        if high is None or counted + kwh <= high:
            break
        low = high
    return parts


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _sum_by(pairs: Iterable[tuple[_K, Decimal]]) -> dict[_K, Decimal]:
    out: dict[_K, Decimal] = defaultdict(Decimal)
    for key, value in pairs:
        out[key] += value
    return dict(out)


# --- validation ----------------------------------------------------------------------------------


def _validate(tariff: Tariff) -> None:
    where = f"tariff {tariff.name}"
    if tariff.valid_to is not None and tariff.valid_to <= tariff.valid_from:
        raise Invalid(f"{where}: valid_to {tariff.valid_to} is not after valid_from {tariff.valid_from}")
    if not 1 <= tariff.cycle_start_month <= 12:
        raise Invalid(f"{where}: cycle_start_month {tariff.cycle_start_month} is not a month (1-12)")
    for period, price in tariff.prices.items():
        if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
            raise Invalid(f"{where}: the price of {period} is {price!r}; give a Decimal >= 0")
    if not tariff.schedules:
        raise Invalid(f"{where}: no schedule; at least one is needed")
    used: set[str] = set()
    for schedule in tariff.schedules:
        _validate_schedule(where, schedule)
        used.update(w.period for w in schedule.windows)
    missing = sorted(used - set(tariff.prices))
    if missing and (tariff.tier_mode == "surcharge" or not tariff.tiers):
        raise Invalid(f"{where}: period {missing[0]} has no price")
    for kind in ("weekday", "weekend"):
        for month in range(1, 13):
            found = [s for s in tariff.schedules if s.days in ("all", kind) and month in s.months]
            if not found:
                raise Invalid(f"{where}: no schedule for {kind} days in month {month}")
            if len(found) > 1:
                raise Invalid(
                    f"{where}: {kind} days in month {month} are covered by both the "
                    f"{found[0].label()} and the {found[1].label()}"
                )
    _validate_tiers(where, tariff)


def _validate_schedule(where: str, schedule: Schedule) -> None:
    label = f"{where}, {schedule.label()}"
    if not schedule.windows:
        raise Invalid(f"{label}: no period")
    bad_months = sorted(m for m in schedule.months if not 1 <= m <= 12)
    if bad_months or not schedule.months:
        raise Invalid(f"{label}: months must be 1-12 and not empty")
    pieces: list[tuple[int, int, Window]] = []
    for window in schedule.windows:
        for moment in (window.start, window.end):
            if moment.second or moment.microsecond or moment.tzinfo is not None:
                raise Invalid(f"{label}: period {window.label()} must start and end on whole minutes")
        pieces.extend((a, b, window) for a, b in window.spans())
    pieces.sort(key=lambda p: (p[0], p[1]))
    reached, last = 0, None
    for a, b, window in pieces:
        if last is not None and a < reached:
            first, second = sorted((last, window), key=schedule.windows.index)
            raise Invalid(f"{label}: period {first.label()} overlaps {second.label()}")
        if a > reached:
            raise Invalid(f"{label}: {_hhmm(reached)}-{_hhmm(a)} has no period")
        reached, last = b, window
    if reached < _MINUTES_PER_DAY:
        raise Invalid(f"{label}: {_hhmm(reached)}-24:00 has no period")


def _validate_tiers(where: str, tariff: Tariff) -> None:
    if tariff.tier_mode == "replace" and not tariff.tiers:
        raise Invalid(f"{where}: tier_mode replace needs tiers")
    previous: Decimal | None = None
    for number, tier in enumerate(tariff.tiers, start=1):
        if not isinstance(tier.amount, Decimal) or not tier.amount.is_finite():
            raise Invalid(f"{where}: tier {number}'s amount is {tier.amount!r}; give a Decimal")
        if tariff.tier_mode == "replace" and tier.amount < 0:
            raise Invalid(f"{where}: tier {number}'s price {tier.amount} is negative")
        if tier.up_to is None:
            if number != len(tariff.tiers):
                raise Invalid(f"{where}: tier {number} has no end but is not the last tier")
            continue
        if not isinstance(tier.up_to, Decimal) or not tier.up_to.is_finite() or tier.up_to <= 0:
            raise Invalid(f"{where}: tier {number} ends at {tier.up_to!r}; give a Decimal > 0")
        if previous is not None and tier.up_to <= previous:
            raise Invalid(
                f"{where}: tier {number} ends at {tier.up_to} kWh, not above tier {number - 1}'s end "
                f"at {previous} kWh; tiers must ascend"
            )
        previous = tier.up_to
    if tariff.tiers and tariff.tiers[-1].up_to is not None:
        raise Invalid(f"{where}: the last tier must have no end (up_to=None)")


def _decimal(value: object, what: str) -> Decimal:
    try:  # a float's repr is the shortest text that reads back as it: what was written in JSON
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation as exc:
        raise Invalid(f"{what} is {value!r}, not a number") from exc
    if not number.is_finite():
        raise Invalid(f"{what} is {value!r}, not a finite number")
    return number


def _clock_time(text: object, where: str) -> time:
    try:
        hours, minutes = str(text).split(":")
        hour, minute = int(hours), int(minutes)
    except ValueError as exc:
        raise Invalid(f"{where}: {text!r} is not a time of day HH:MM") from exc
    if (hour, minute) == (24, 0):
        return time(0)
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise Invalid(f"{where}: {text!r} is not a time of day HH:MM")
    return time(hour, minute)


def _minute(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _range(tariff: Tariff) -> str:
    end = tariff.valid_to.isoformat() if tariff.valid_to else "open"
    return f"{tariff.valid_from.isoformat()} to {end}"

"""The date and datetime rules, vectorised (see `values` for the rules themselves).

Common shapes are handed to Arrow's own parsers (fast, and strict about the calendar); anything
else is taken apart with one regex and checked and assembled with integer arithmetic, so that
every row gets its own verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.ingest._columns import (
    Converted,
    all_true,
    any_true,
    bad_where,
    checked,
    chunked,
    in_range,
    int_field,
    keep,
    none_bad,
    nullify,
)

__all__ = [
    "DATETIME_RE",
    "DATE_RE",
    "check_date",
    "check_timestamps",
    "convert_date",
    "convert_datetime",
    "date_grammar",
    "datetime_verdicts",
]

_DATE_CANONICAL_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATE_RE = r"^(?P<y>[0-9]{4})(?P<s1>[-/])(?P<mo>[0-9]{1,2})(?P<s2>[-/])(?P<d>[0-9]{1,2})$"
DATETIME_RE = (
    r"^(?P<y>[0-9]{4})(?P<s1>[-/])(?P<mo>[0-9]{1,2})(?P<s2>[-/])(?P<d>[0-9]{1,2})"
    r"(?:[T ](?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r"(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$"
)
_TIME_CANONICAL = r"[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
_NAIVE_CANONICAL_LENGTHS = pa.array([10, 16, 19, 21, 22, 23, 24, 25, 26], pa.int32())
_OFFSET_CANONICAL_RE = rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{_TIME_CANONICAL}(?:Z|[+-][0-9]{{2}}:[0-9]{{2}})$"

_US_PER_DAY = 86_400_000_000
_MIN_DAYS = -719_162  # 0001-01-01
_MAX_DAYS = 2_932_896  # 9999-12-31
_MIN_US = _MIN_DAYS * _US_PER_DAY
_MAX_US = (_MAX_DAYS + 1) * _US_PER_DAY - 1
_UTC = pa.timestamp("us", tz="UTC")
_NAIVE = pa.timestamp("us")


def _days_from_civil(y: pa.ChunkedArray, m: pa.ChunkedArray, d: pa.ChunkedArray) -> pa.ChunkedArray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), for y >= 1."""
    yy = pc.subtract(y, pc.cast(pc.less_equal(m, 2), pa.int64()))
    era = pc.divide(yy, 400)
    yoe = pc.subtract(yy, pc.multiply(era, 400))
    mp = pc.if_else(pc.greater(m, 2), pc.subtract(m, 3), pc.add(m, 9))
    doy = pc.add(pc.divide(pc.add(pc.multiply(mp, 153), 2), 5), pc.subtract(d, 1))
    doe = pc.add(
        pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)),
        doy,
    )
    return chunked(pc.subtract(pc.add(pc.multiply(era, 146_097), doe), 719_468))


@dataclass(frozen=True, slots=True)
class _DateParts:
    matched: pa.ChunkedArray  # grammar matched
    real: pa.ChunkedArray  # ... and names a real day of years 1 to 9999
    days: pa.ChunkedArray  # days since the epoch (garbage where not real)


def _date_parts(parts: pa.ChunkedArray) -> _DateParts:
    """Check the y/s1/mo/s2/d groups of a DATE_RE or DATETIME_RE match."""
    y, m, d = (int_field(parts, name) for name in ("y", "mo", "d"))
    days = _days_from_civil(y, m, d)
    date = pc.cast(pc.cast(days, pa.int32()), pa.date32())
    conditions = [
        pc.equal(pc.struct_field(parts, "s1"), pc.struct_field(parts, "s2")),
        pc.greater_equal(y, 1),
        pc.greater_equal(m, 1),
        pc.less_equal(m, 12),
        pc.greater_equal(d, 1),
        pc.less_equal(d, 31),
        pc.equal(pc.month(date), m),
        pc.equal(pc.day(date), d),
    ]
    matched = chunked(pc.and_(pc.is_valid(parts), pc.fill_null(conditions[0], False)))
    real = matched
    for condition in conditions[1:]:
        real = pc.and_(real, pc.fill_null(condition, False))
    return _DateParts(matched, chunked(real), days)


def convert_date(text: pa.ChunkedArray, *, shortcuts: bool = True) -> Converted:
    """The date rule. Plain YYYY-MM-DD columns are cast by Arrow, which checks the calendar
    (unless `shortcuts` is false: then the rule's own arithmetic does everything)."""
    t, canonical = checked(text, _DATE_CANONICAL_RE)
    if shortcuts and all_true(canonical):
        try:
            values = chunked(pc.cast(t, pa.date32()))
        except pa.ArrowInvalid:
            pass
        else:
            ok = in_range(pc.cast(values, pa.int32()), _MIN_DAYS, _MAX_DAYS)
            return Converted(keep(ok, values), bad_where(t, ok))
    parts = chunked(pc.extract_regex(t, DATE_RE))
    date = _date_parts(parts)
    values = chunked(pc.cast(pc.cast(date.days, pa.int32()), pa.date32()))
    return Converted(keep(date.real, values), bad_where(t, date.real))


def check_date(values: pa.ChunkedArray) -> Converted:
    """Typed dates (Parquet, or parsed by pyarrow.csv) as date32, within the years 1 to 9999."""
    values = chunked(pc.cast(values, pa.date32()))
    ok = in_range(pc.cast(values, pa.int32()), _MIN_DAYS, _MAX_DAYS)
    return Converted(keep(ok, values), bad_where(values, ok))


# --------------------------------------------------------------------------------------- datetime


@dataclass(frozen=True, slots=True)
class _Instants:
    utc_us: pa.ChunkedArray  # int64 microseconds since the epoch, UTC; null where not valid
    nonexistent: pa.ChunkedArray  # local times skipped by a clock change


def _localize(naive_us: pa.ChunkedArray, timezone: str) -> _Instants:
    """Read naive microseconds as local times in `timezone`; return UTC microseconds."""
    if timezone in ("UTC", "Etc/UTC"):
        return _Instants(naive_us, none_bad(naive_us))
    naive = pc.cast(naive_us, _NAIVE)
    try:
        local = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="raise")
    except pa.ArrowInvalid:
        early = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="earliest")
        late = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="latest")
        gap = chunked(pc.fill_null(pc.not_equal(early, late), False))
        utc = chunked(pc.cast(early, pa.int64()))
        return _Instants(chunked(pc.if_else(gap, pa.scalar(None, pa.int64()), utc)), gap)
    return _Instants(chunked(pc.cast(local, pa.int64())), none_bad(naive_us))


@dataclass(frozen=True, slots=True)
class _DatetimeParts:
    matched: pa.ChunkedArray
    real: pa.ChunkedArray  # a real date, a real time of day and a sane offset
    instants: _Instants


def _datetime_parts(t: pa.ChunkedArray, timezone: str) -> _DatetimeParts:
    """Parse prepared text with DATETIME_RE and compute UTC instants, vectorised."""
    parts = chunked(pc.extract_regex(t, DATETIME_RE))
    date = _date_parts(parts)
    h, mi, s = (int_field(parts, name) for name in ("h", "mi", "s"))
    fraction = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.struct_field(parts, "f"), width=6, padding="0"), 0, 6)
    micros = pc.cast(fraction, pa.int64())
    tz = pc.replace_substring(pc.struct_field(parts, "tz"), ":", "")
    tz_h = pc.utf8_slice_codeunits(tz, 1, 3)
    tz_m = pc.utf8_slice_codeunits(tz, 3, 5)
    tz_h = pc.cast(pc.if_else(pc.equal(tz_h, ""), "0", tz_h), pa.int64())
    tz_m = pc.cast(pc.if_else(pc.equal(tz_m, ""), "0", tz_m), pa.int64())
    real = date.real
    for condition in (
        pc.less_equal(h, 23),
        pc.less_equal(mi, 59),
        pc.less_equal(s, 59),
        pc.less_equal(tz_h, 23),
        pc.less_equal(tz_m, 59),
    ):
        real = chunked(pc.and_(real, pc.fill_null(condition, False)))
    local_us = pc.add(
        pc.add(pc.multiply(date.days, _US_PER_DAY), pc.multiply(h, 3_600_000_000)),
        pc.add(pc.add(pc.multiply(mi, 60_000_000), pc.multiply(s, 1_000_000)), micros),
    )
    local_us = chunked(pc.if_else(real, local_us, pa.scalar(None, pa.int64())))
    has_tz = pc.not_equal(tz, "")
    offset_us = pc.multiply(pc.add(pc.multiply(tz_h, 60), tz_m), 60_000_000)
    offset_us = pc.if_else(pc.starts_with(tz, "-"), pc.negate(offset_us), offset_us)
    instants = _localize(chunked(pc.if_else(has_tz, pa.scalar(None, pa.int64()), local_us)), timezone)
    utc_us = pc.if_else(has_tz, pc.subtract(local_us, offset_us), instants.utc_us)
    return _DatetimeParts(
        date.matched,
        real,
        _Instants(chunked(utc_us), chunked(pc.fill_null(instants.nonexistent, False))),
    )


def _datetime_canonical(t: pa.ChunkedArray, timezone: str) -> _Instants | None:
    """The common shapes parsed by Arrow's own ISO 8601 parser; None when that does not apply.

    Without an offset, Arrow reads exactly YYYY-MM-DD, then [T ]hh, [T ]hh:mm, [T ]hh:mm:ss and
    that with a fraction; the rules do not allow the hour alone (length 13), so checking the
    lengths is enough to keep to the rules, and much cheaper than a regex.
    """
    try:
        canonical = pc.is_in(pc.binary_length(t), value_set=_NAIVE_CANONICAL_LENGTHS)
        if all_true(pc.or_(canonical, pc.is_null(t))):
            try:
                naive = pc.cast(t, _NAIVE)
                return _localize(chunked(pc.cast(naive, pa.int64())), timezone)
            except pa.ArrowInvalid:
                pass  # a length that fits but an offset after it: try the offset shape below
        if all_true(pc.match_substring_regex(t, _OFFSET_CANONICAL_RE)):
            utc = chunked(pc.cast(pc.cast(t, _UTC), pa.int64()))
            return _Instants(utc, none_bad(utc))
    except pa.ArrowInvalid:
        return None
    return None


def convert_datetime(text: pa.ChunkedArray, timezone: str, *, shortcuts: bool = True) -> Converted:
    """The datetime rule; naive values are local times in `timezone`. Common shapes are parsed
    by Arrow unless `shortcuts` is false."""
    t = chunked(pc.utf8_trim_whitespace(text))
    instants = _datetime_canonical(t, timezone) if shortcuts else None
    if instants is None:
        prepared = nullify(t)
        if prepared is not t:
            t = prepared
            instants = _datetime_canonical(t, timezone) if shortcuts else None
    if instants is None or any_true(instants.nonexistent):
        instants = _datetime_parts(t, timezone).instants
    ok = in_range(instants.utc_us, _MIN_US, _MAX_US)
    values = chunked(pc.cast(keep(ok, instants.utc_us), _UTC))
    return Converted(values, bad_where(t, ok))


def check_timestamps(values: pa.ChunkedArray, timezone: str) -> Converted:
    """Typed timestamps or dates (Parquet) as UTC microseconds; naive ones are local times."""
    kind = values.type
    if pa.types.is_date(kind):
        values = chunked(pc.cast(pc.cast(values, pa.date32()), _NAIVE))
    elif kind.unit != "us":
        values = chunked(pc.cast(values, pa.timestamp("us", tz=kind.tz), safe=False))
    if values.type.tz is None:
        instants = _localize(chunked(pc.cast(values, pa.int64())), timezone)
        us = instants.utc_us
    else:
        us = chunked(pc.cast(values, pa.int64()))
    ok = in_range(us, _MIN_US, _MAX_US)
    return Converted(chunked(pc.cast(keep(ok, us), _UTC)), bad_where(values, ok))


# ---------------------------------------------------------------------------------------- reasons


def date_grammar(text: pa.ChunkedArray) -> pa.Array:
    """For prepared text: True where it has the shape of a date (it may still not be a real one)."""
    return _date_parts(chunked(pc.extract_regex(text, DATE_RE))).matched.combine_chunks()


@dataclass(frozen=True, slots=True)
class DatetimeVerdicts:
    """Why datetime values were refused, as masks over the values."""

    shapeless: pa.Array  # not in the ISO 8601 shape at all
    unreal: pa.Array  # the shape, but no such day, time of day or offset
    nonexistent: pa.Array  # a local time skipped by a clock change


def datetime_verdicts(text: pa.ChunkedArray, timezone: str) -> DatetimeVerdicts:
    """For prepared text: the masks `explain` needs to say why a datetime was refused."""
    parts = _datetime_parts(text, timezone)
    return DatetimeVerdicts(
        pc.invert(parts.matched).combine_chunks(),
        pc.invert(parts.real).combine_chunks(),
        parts.instants.nonexistent.combine_chunks(),
    )

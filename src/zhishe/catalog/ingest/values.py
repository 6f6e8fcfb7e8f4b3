"""Value rules: how the text of a cell becomes a typed value, column by column and vectorised.

These functions are the single definition of what each column type accepts. Every reader (CSV, TSV,
XLSX, JSON, NDJSON) hands them raw text; the CSV fast path in `validate` lets pyarrow parse some
types natively and is tested to accept and reject exactly what these rules do.

Rules:

* An empty cell is null for every type, string columns included. Columns of every other type also
  read ``NULL``, ``null``, ``NA`` and ``N/A`` as null. Values of non-string columns are stripped of
  surrounding whitespace (Unicode whitespace, so a full-width space counts) before they are read;
  the values of string columns are kept exactly as written.
* integer: an optional sign and ASCII digits, nothing else ("007" is 7). "1.5", "1,000", "1.0",
  "1e3" and hexadecimal are errors, and the value must fit in a signed 64-bit integer.
* decimal: plain or scientific notation ("-1.5", ".5", "1.", "6.02e23") without thousands
  separators. "NaN", "inf" and values too large for a double are errors. Stored as float64.
* boolean: true/false, t/f, yes/no, y/n, 1/0 and 是/否, in any letter case.
* date: YYYY-MM-DD or YYYY/MM/DD (month and day may have one digit; both separators must be the
  same) naming a real calendar day of the years 1 to 9999: 2023-02-30 is an error.
* datetime: ISO 8601: a date as above, "T" or one space, HH:MM (the hour may have one digit), then
  optionally :SS and a fraction of up to 9 digits (kept to the microsecond; further digits are
  truncated), then optionally an offset: Z, ±HH:MM, ±HHMM or ±HH. A date alone means midnight.
  Values without an offset are local times in the import's time zone (an IANA name): an ambiguous
  local time (clocks turned back) is read as its earlier instant, and a local time that does not
  exist (clocks turned forward) is an error. Everything is converted to UTC and stored as
  timestamp(us, UTC); the result must lie in the years 1 to 9999.
* point: "lat,lon" (e.g. "39.91,116.40"; spaces and a full-width comma are allowed), WKT
  "POINT(lon lat)" (any letter case), or a JSON object {"lat": .., "lon"|"lng"|"long": ..}; the
  numbers as for decimal, lat in [-90, 90] and lon in [-180, 180]. Stored as
  struct<lat: float64, lon: float64>.
* string: any text.

JSON and NDJSON input is read as text first: a JSON number is read as it is written (so 1.0 is not
an integer), true/false are booleans and null is null. Nested objects and arrays are accepted only in
point columns; `validate` reports them elsewhere. Parquet columns keep their own types when these
are compatible with the declared ones (see `convert_typed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.types import POINT_TYPE, ColumnType, arrow_type

__all__ = [
    "FALSE_TOKENS",
    "NULL_TOKENS",
    "TRUE_TOKENS",
    "Converted",
    "convert_text",
    "convert_typed",
    "explain",
    "prepare",
    "shown",
]

#: Words that mean "no value" in columns of every type but string (the empty cell is null everywhere).
NULL_TOKENS: tuple[str, ...] = ("NULL", "null", "NA", "N/A")
#: Accepted boolean words, compared case-insensitively.
TRUE_TOKENS: tuple[str, ...] = ("true", "t", "yes", "y", "1", "是")
FALSE_TOKENS: tuple[str, ...] = ("false", "f", "no", "n", "0", "否")

_NULL_SET = pa.array(["", *NULL_TOKENS])
_TRUE_SET = pa.array(list(TRUE_TOKENS))
_FALSE_SET = pa.array(list(FALSE_TOKENS))
_NULL_STRING = pa.scalar(None, pa.string())

_NUM = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
INTEGER_RE = r"^[+-]?[0-9]+$"
DECIMAL_RE = rf"^{_NUM}$"
_NON_FINITE_RE = r"(?i)^[+-]?(?:nan|inf|infinity)$"
_INT64_MAX = "9223372036854775807"
_INT64_MIN_ABS = "9223372036854775808"

_DATE_CANONICAL_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATE_RE = r"^(?P<y>[0-9]{4})(?P<s1>[-/])(?P<mo>[0-9]{1,2})(?P<s2>[-/])(?P<d>[0-9]{1,2})$"
_TIME_CANONICAL = r"[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
_NAIVE_CANONICAL_LENGTHS = pa.array([10, 16, 19, 21, 22, 23, 24, 25, 26], pa.int32())
_OFFSET_CANONICAL_RE = rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{_TIME_CANONICAL}(?:Z|[+-][0-9]{{2}}:[0-9]{{2}})$"
DATETIME_RE = (
    r"^(?P<y>[0-9]{4})(?P<s1>[-/])(?P<mo>[0-9]{1,2})(?P<s2>[-/])(?P<d>[0-9]{1,2})"
    r"(?:[T ](?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r"(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$"
)
_LATLON_RE = rf"^(?P<lat>{_NUM})\s*[,，]\s*(?P<lon>{_NUM})$"
_WKT_RE = rf"^(?i:point)\s*\(\s*(?P<lon>{_NUM})\s+(?P<lat>{_NUM})\s*\)$"
_JSON_POINT_RE = (
    rf'^\{{\s*"(?P<k1>lat|lon|lng|long)"\s*:\s*(?P<v1>{_NUM})\s*,'
    rf'\s*"(?P<k2>lat|lon|lng|long)"\s*:\s*(?P<v2>{_NUM})\s*\}}$'
)

_US_PER_DAY = 86_400_000_000
_MIN_DAYS = -719_162  # 0001-01-01
_MAX_DAYS = 2_932_896  # 9999-12-31
_MIN_US = _MIN_DAYS * _US_PER_DAY
_MAX_US = (_MAX_DAYS + 1) * _US_PER_DAY - 1
_SHOWN_MAX = 80

_UTC = pa.timestamp("us", tz="UTC")
_NAIVE = pa.timestamp("us")


@dataclass(frozen=True, slots=True)
class Converted:
    """One column converted: typed values and where the given values were not acceptable."""

    #: Values of `arrow_type(column_type)`; null where the cell was null or bad.
    values: pa.ChunkedArray
    #: Booleans without nulls: True where a value was given but does not follow the rules.
    bad: pa.ChunkedArray


def _chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def _any(mask: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.any(mask).as_py())


def _all(mask: pa.Array | pa.ChunkedArray) -> bool:
    return pc.all(mask).as_py() is not False


def _bad(given: pa.ChunkedArray, ok: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where `given` has a value and `ok` is not true."""
    return _chunked(pc.and_(pc.is_valid(given), pc.invert(pc.fill_null(ok, False))))


def _none_bad(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """All false, one per value."""
    return _chunked(pc.and_(pc.is_null(values), False))


def _keep(ok: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """`values` where `ok` is true, null elsewhere (a no-op when all are ok)."""
    if _all(ok):
        return values
    return _chunked(pc.if_else(ok, values, pa.scalar(None, values.type)))


def prepare(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text of a non-string column, stripped of whitespace, with the null words turned into nulls."""
    return _nulls(_chunked(pc.utf8_trim_whitespace(text)))


def _nulls(trimmed: pa.ChunkedArray) -> pa.ChunkedArray:
    is_null = pc.is_in(trimmed, value_set=_NULL_SET)
    if _any(is_null):
        return _chunked(pc.if_else(is_null, _NULL_STRING, trimmed))
    return trimmed


def _checked(text: pa.ChunkedArray, pattern: str) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Prepared text and where it matches `pattern` (null where the text is null).

    The null words never match a pattern of the rules, so they are looked for only when some value
    does not match: the common all-good column costs one trim and one regex pass.
    """
    trimmed = _chunked(pc.utf8_trim_whitespace(text))
    ok = _chunked(pc.match_substring_regex(trimmed, pattern))
    if _all(ok):
        return trimmed, ok
    prepared = _nulls(trimmed)
    if prepared is not trimmed:
        ok = _chunked(pc.if_else(pc.is_null(prepared), pa.scalar(None, pa.bool_()), ok))
    return prepared, ok


def _int_field(parts: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """An optional digits group of a regex match as int64; an absent group reads as 0."""
    field = pc.struct_field(parts, name)
    field = pc.if_else(pc.equal(field, ""), "0", field)
    return _chunked(pc.cast(field, pa.int64()))


# ---------------------------------------------------------------------------------------- integer


def _int_overflow(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """For text in integer grammar: True where the value does not fit in int64."""
    digits = pc.utf8_ltrim(pc.utf8_ltrim(text, characters="+-"), characters="0")
    length = pc.binary_length(digits)
    limit = pc.if_else(pc.starts_with(text, "-"), _INT64_MIN_ABS, _INT64_MAX)
    at_limit = pc.and_(pc.equal(length, 19), pc.greater(digits, limit))
    return _chunked(pc.or_(pc.greater(length, 19), at_limit))


def _integer_quick(text: pa.ChunkedArray) -> Converted | None:
    """Arrow's own cast, for the common column of plain integers; None if it does not apply.

    The cast reads exactly -?[0-9]+ within the int64 range, and also hexadecimal "0x1F" (no
    sign, no whitespace), which the rules refuse: so it is only trusted when no value starts
    with 0x or 0X.
    """
    try:
        values = _chunked(pc.cast(text, pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if _any(pc.starts_with(text, "0x")) or _any(pc.starts_with(text, "0X")):
        return None
    return Converted(values, _none_bad(text))


def _integer(text: pa.ChunkedArray) -> Converted:
    quick = _integer_quick(text)
    if quick is not None:
        return quick
    t, ok = _checked(text, INTEGER_RE)
    if _any(pc.greater(pc.binary_length(t), 18)):
        ok = _chunked(pc.and_kleene(ok, pc.invert(_int_overflow(t))))
    good = _keep(ok, t)
    if _any(pc.starts_with(good, "+")):
        good = _chunked(pc.utf8_ltrim(good, characters="+"))
    return Converted(_chunked(pc.cast(good, pa.int64())), _bad(t, ok))


# ---------------------------------------------------------------------------------------- decimal


def _decimal(text: pa.ChunkedArray) -> Converted:
    t, ok = _checked(text, DECIMAL_RE)
    values = _chunked(pc.cast(_keep(ok, t), pa.float64()))
    finite = _chunked(pc.is_finite(values))
    if not _all(finite):
        values = _keep(finite, values)
        ok = _chunked(pc.and_kleene(ok, finite))
    return Converted(values, _bad(t, ok))


def _check_finite(values: pa.ChunkedArray) -> Converted:
    finite = _chunked(pc.is_finite(values))
    return Converted(_keep(finite, values), _bad(values, finite))


# ---------------------------------------------------------------------------------------- boolean


def _boolean(text: pa.ChunkedArray) -> Converted:
    t = prepare(text)
    lower = pc.utf8_lower(t)
    is_true = pc.is_in(lower, value_set=_TRUE_SET)
    known = pc.or_(is_true, pc.is_in(lower, value_set=_FALSE_SET))
    values = _chunked(pc.if_else(known, is_true, pa.scalar(None, pa.bool_())))
    return Converted(values, _bad(t, _chunked(known)))


# ------------------------------------------------------------------------------------------- date


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
    return _chunked(pc.subtract(pc.add(pc.multiply(era, 146_097), doe), 719_468))


@dataclass(frozen=True, slots=True)
class _DateParts:
    matched: pa.ChunkedArray  # grammar matched
    real: pa.ChunkedArray  # ... and names a real day of years 1 to 9999
    days: pa.ChunkedArray  # days since the epoch (garbage where not real)


def _date_parts(parts: pa.ChunkedArray) -> _DateParts:
    """Check the y/s1/mo/s2/d groups of a DATE_RE or DATETIME_RE match."""
    y, m, d = (_int_field(parts, name) for name in ("y", "mo", "d"))
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
    matched = _chunked(pc.and_(pc.is_valid(parts), pc.fill_null(conditions[0], False)))
    real = matched
    for condition in conditions[1:]:
        real = pc.and_(real, pc.fill_null(condition, False))
    return _DateParts(matched, _chunked(real), days)


def _in_range(values: pa.ChunkedArray, low: int, high: int) -> pa.ChunkedArray:
    return _chunked(pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high)))


def _date(text: pa.ChunkedArray) -> Converted:
    t, canonical = _checked(text, _DATE_CANONICAL_RE)
    if _all(canonical):
        try:
            values = _chunked(pc.cast(t, pa.date32()))
        except pa.ArrowInvalid:
            pass
        else:
            ok = _in_range(pc.cast(values, pa.int32()), _MIN_DAYS, _MAX_DAYS)
            return Converted(_keep(ok, values), _bad(t, ok))
    parts = _chunked(pc.extract_regex(t, DATE_RE))
    date = _date_parts(parts)
    values = _chunked(pc.cast(pc.cast(date.days, pa.int32()), pa.date32()))
    return Converted(_keep(date.real, values), _bad(t, date.real))


def _check_date(values: pa.ChunkedArray) -> Converted:
    values = _chunked(pc.cast(values, pa.date32()))
    ok = _in_range(pc.cast(values, pa.int32()), _MIN_DAYS, _MAX_DAYS)
    return Converted(_keep(ok, values), _bad(values, ok))


# --------------------------------------------------------------------------------------- datetime


@dataclass(frozen=True, slots=True)
class _Instants:
    utc_us: pa.ChunkedArray  # int64 microseconds since the epoch, UTC; null where not valid
    nonexistent: pa.ChunkedArray  # local times skipped by a clock change


def _localize(naive_us: pa.ChunkedArray, timezone: str) -> _Instants:
    """Read naive microseconds as local times in `timezone`; return UTC microseconds."""
    if timezone in ("UTC", "Etc/UTC"):
        return _Instants(naive_us, _none_bad(naive_us))
    naive = pc.cast(naive_us, _NAIVE)
    try:
        local = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="raise")
    except pa.ArrowInvalid:
        early = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="earliest")
        late = pc.assume_timezone(naive, timezone=timezone, ambiguous="earliest", nonexistent="latest")
        gap = _chunked(pc.fill_null(pc.not_equal(early, late), False))
        utc = _chunked(pc.cast(early, pa.int64()))
        return _Instants(_chunked(pc.if_else(gap, pa.scalar(None, pa.int64()), utc)), gap)
    return _Instants(_chunked(pc.cast(local, pa.int64())), _none_bad(naive_us))


@dataclass(frozen=True, slots=True)
class _DatetimeParts:
    matched: pa.ChunkedArray
    real: pa.ChunkedArray  # a real date, a real time of day and a sane offset
    instants: _Instants


def _datetime_parts(t: pa.ChunkedArray, timezone: str) -> _DatetimeParts:
    parts = _chunked(pc.extract_regex(t, DATETIME_RE))
    date = _date_parts(parts)
    h, mi, s = (_int_field(parts, name) for name in ("h", "mi", "s"))
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
        real = _chunked(pc.and_(real, pc.fill_null(condition, False)))
    local_us = pc.add(
        pc.add(pc.multiply(date.days, _US_PER_DAY), pc.multiply(h, 3_600_000_000)),
        pc.add(pc.add(pc.multiply(mi, 60_000_000), pc.multiply(s, 1_000_000)), micros),
    )
    local_us = _chunked(pc.if_else(real, local_us, pa.scalar(None, pa.int64())))
    has_tz = pc.not_equal(tz, "")
    offset_us = pc.multiply(pc.add(pc.multiply(tz_h, 60), tz_m), 60_000_000)
    offset_us = pc.if_else(pc.starts_with(tz, "-"), pc.negate(offset_us), offset_us)
    instants = _localize(_chunked(pc.if_else(has_tz, pa.scalar(None, pa.int64()), local_us)), timezone)
    utc_us = pc.if_else(has_tz, pc.subtract(local_us, offset_us), instants.utc_us)
    return _DatetimeParts(
        date.matched,
        real,
        _Instants(_chunked(utc_us), _chunked(pc.fill_null(instants.nonexistent, False))),
    )


def _datetime_canonical(t: pa.ChunkedArray, timezone: str) -> _Instants | None:
    """The common shapes parsed by Arrow's own ISO 8601 parser; None when that does not apply.

    Without an offset, Arrow reads exactly YYYY-MM-DD, then [T ]hh, [T ]hh:mm, [T ]hh:mm:ss and
    that with a fraction; the rules do not allow the hour alone (length 13), so checking the
    lengths is enough to keep to the rules, and much cheaper than a regex.
    """
    try:
        canonical = pc.is_in(pc.binary_length(t), value_set=_NAIVE_CANONICAL_LENGTHS)
        if _all(pc.or_(canonical, pc.is_null(t))):
            naive = pc.cast(t, _NAIVE)
            return _localize(_chunked(pc.cast(naive, pa.int64())), timezone)
        if _all(pc.match_substring_regex(t, _OFFSET_CANONICAL_RE)):
            utc = _chunked(pc.cast(pc.cast(t, _UTC), pa.int64()))
            return _Instants(utc, _none_bad(utc))
    except pa.ArrowInvalid:
        return None
    return None


def _datetime(text: pa.ChunkedArray, timezone: str) -> Converted:
    t = _chunked(pc.utf8_trim_whitespace(text))
    instants = _datetime_canonical(t, timezone)
    if instants is None:
        prepared = _nulls(t)
        if prepared is not t:
            t = prepared
            instants = _datetime_canonical(t, timezone)
    if instants is None or _any(instants.nonexistent):
        instants = _datetime_parts(t, timezone).instants
    ok = _in_range(instants.utc_us, _MIN_US, _MAX_US)
    values = _chunked(pc.cast(_keep(ok, instants.utc_us), _UTC))
    return Converted(values, _bad(t, ok))


def _check_timestamps(values: pa.ChunkedArray, timezone: str) -> Converted:
    kind = values.type
    if pa.types.is_date(kind):
        values = _chunked(pc.cast(pc.cast(values, pa.date32()), _NAIVE))
    elif kind.unit != "us":
        values = _chunked(pc.cast(values, pa.timestamp("us", tz=kind.tz), safe=False))
    if values.type.tz is None:
        instants = _localize(_chunked(pc.cast(values, pa.int64())), timezone)
        us = instants.utc_us
    else:
        us = _chunked(pc.cast(values, pa.int64()))
    ok = _in_range(us, _MIN_US, _MAX_US)
    return Converted(_chunked(pc.cast(_keep(ok, us), _UTC)), _bad(values, ok))


# ------------------------------------------------------------------------------------------ point


def _point_text(t: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Latitude and longitude text of each point, null where no form matches."""
    latlon = pc.extract_regex(t, _LATLON_RE)
    lat, lon = pc.struct_field(latlon, "lat"), pc.struct_field(latlon, "lon")
    if _any(pc.match_substring_regex(t, "^(?i:point)")):
        wkt = pc.extract_regex(t, _WKT_RE)
        lat = pc.coalesce(lat, pc.struct_field(wkt, "lat"))
        lon = pc.coalesce(lon, pc.struct_field(wkt, "lon"))
    if _any(pc.starts_with(t, "{")):
        obj = pc.extract_regex(t, _JSON_POINT_RE)
        first_is_lat = pc.equal(pc.struct_field(obj, "k1"), "lat")
        second_is_lat = pc.equal(pc.struct_field(obj, "k2"), "lat")
        one_lat = pc.xor(first_is_lat, second_is_lat)
        v1, v2 = pc.struct_field(obj, "v1"), pc.struct_field(obj, "v2")
        obj_lat = pc.if_else(one_lat, pc.if_else(first_is_lat, v1, v2), _NULL_STRING)
        obj_lon = pc.if_else(one_lat, pc.if_else(first_is_lat, v2, v1), _NULL_STRING)
        lat, lon = pc.coalesce(lat, obj_lat), pc.coalesce(lon, obj_lon)
    return _chunked(lat), _chunked(lon)


def _point_from(lat: pa.ChunkedArray, lon: pa.ChunkedArray, given: pa.ChunkedArray) -> Converted:
    ok = pc.and_(
        pc.and_(pc.greater_equal(lat, -90.0), pc.less_equal(lat, 90.0)),
        pc.and_(pc.greater_equal(lon, -180.0), pc.less_equal(lon, 180.0)),
    )
    ok = _chunked(pc.fill_null(ok, False))
    lat_a, lon_a = (_chunked(pc.cast(x, pa.float64())).combine_chunks() for x in (lat, lon))
    mask = _chunked(pc.invert(ok)).combine_chunks()
    struct = pa.StructArray.from_arrays([lat_a, lon_a], fields=list(POINT_TYPE), mask=mask)
    return Converted(_chunked(struct), _bad(given, ok))


def _point(text: pa.ChunkedArray) -> Converted:
    t = prepare(text)
    lat_text, lon_text = _point_text(t)
    lat = pc.cast(lat_text, pa.float64())
    lon = pc.cast(lon_text, pa.float64())
    return _point_from(_chunked(lat), _chunked(lon), t)


_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "lng", "long", "longitude")


def _point_struct(values: pa.ChunkedArray) -> Converted | None:
    names = {f.name.lower(): i for i, f in enumerate(values.type)}
    lat_i = next((names[n] for n in _LAT_NAMES if n in names), None)
    lon_i = next((names[n] for n in _LON_NAMES if n in names), None)
    if lat_i is None or lon_i is None:
        return None
    lat, lon = pc.struct_field(values, lat_i), pc.struct_field(values, lon_i)
    if not all(_numeric(x.type) for x in (lat, lon)):
        return None
    return _point_from(_chunked(pc.cast(lat, pa.float64())), _chunked(pc.cast(lon, pa.float64())), values)


# ----------------------------------------------------------------------------------------- string


def _string(text: pa.ChunkedArray) -> Converted:
    empty = pc.equal(text, "")
    values = _chunked(pc.if_else(empty, _NULL_STRING, text)) if _any(empty) else text
    return Converted(values, _none_bad(text))


# ---------------------------------------------------------------------------------------- dispatch


def convert_text(column_type: ColumnType, text: pa.ChunkedArray, *, timezone: str) -> Converted:
    """Convert a column of raw text (pa.string()) to `column_type` under the rules above."""
    text = _chunked(text)
    if text.type != pa.string():
        text = _chunked(pc.cast(text, pa.string()))
    match ColumnType(column_type):
        case ColumnType.STRING:
            return _string(text)
        case ColumnType.INTEGER:
            return _integer(text)
        case ColumnType.DECIMAL:
            return _decimal(text)
        case ColumnType.BOOLEAN:
            return _boolean(text)
        case ColumnType.DATE:
            return _date(text)
        case ColumnType.DATETIME:
            return _datetime(text, timezone)
        case ColumnType.POINT:
            return _point(text)
    raise AssertionError(column_type)  # pragma: no cover


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind))


def convert_typed(
    column_type: ColumnType,
    values: pa.ChunkedArray,
    *,
    timezone: str,
    text: pa.ChunkedArray | None = None,
) -> Converted | None:
    """Convert an already typed column (from Parquet) to `column_type`; None if the types conflict.

    Compatible: any type when the column is all null; integer from any integer type; decimal from
    integer, floating point and decimal types; boolean from boolean; date from dates; datetime from
    timestamps (naive ones are local times in `timezone`; below a microsecond is truncated) and
    dates (midnight); point from a struct with lat/latitude and lon/lng/long/longitude numbers or
    from text; string from any type, as its `text` rendering (numbers as written, nested values as
    JSON). Text never becomes a number, date or boolean: a Parquet file has types, and a text column
    where the dataset declares another type is a conflict. The value rules still apply (no NaN,
    ranges).
    """
    values = _chunked(values)
    kind = values.type
    column_type = ColumnType(column_type)
    target = arrow_type(column_type)
    if pa.types.is_null(kind):
        return Converted(_chunked(pa.nulls(len(values), target)), _none_bad(values))
    if _is_text(kind):
        if column_type in (ColumnType.STRING, ColumnType.POINT):
            return convert_text(column_type, _chunked(pc.cast(values, pa.string())), timezone=timezone)
        return None
    if column_type == ColumnType.STRING:
        if text is None:
            return None
        return convert_text(column_type, _chunked(text), timezone=timezone)
    checks: dict[ColumnType, Callable[[], Converted | None]] = {
        ColumnType.INTEGER: lambda: _typed_integer(values) if pa.types.is_integer(kind) else None,
        ColumnType.DECIMAL: lambda: (
            _check_finite(_chunked(pc.cast(values, pa.float64()))) if _numeric(kind) else None
        ),
        ColumnType.BOOLEAN: lambda: (
            Converted(values, _none_bad(values)) if pa.types.is_boolean(kind) else None
        ),
        ColumnType.DATE: lambda: _check_date(values) if pa.types.is_date(kind) else None,
        ColumnType.DATETIME: lambda: (
            _check_timestamps(values, timezone)
            if pa.types.is_timestamp(kind) or pa.types.is_date(kind)
            else None
        ),
        ColumnType.POINT: lambda: _point_struct(values) if pa.types.is_struct(kind) else None,
    }
    check = checks.get(column_type)
    return check() if check is not None else None


def _typed_integer(values: pa.ChunkedArray) -> Converted:
    if values.type == pa.uint64():
        ok = _chunked(pc.less_equal(values, pa.scalar(int(_INT64_MAX), pa.uint64())))
        return Converted(_chunked(pc.cast(_keep(ok, values), pa.int64())), _bad(values, ok))
    return Converted(_chunked(pc.cast(values, pa.int64())), _none_bad(values))


# ---------------------------------------------------------------------------------------- reasons


def shown(values: pa.Array) -> pa.Array:
    """Values quoted for a message, long ones cut short: 'abc'."""
    long = pc.greater(pc.utf8_length(values), _SHOWN_MAX)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, _SHOWN_MAX - 1), "…", "")
    text = pc.if_else(long, cut, values)
    return pc.binary_join_element_wise("'", text, "'", "")


def _say(quoted: pa.Array, *rules: tuple[pa.Array | None, str]) -> pa.Array:
    """The first rule whose mask is true gives the reason; the last rule's mask is ignored."""
    *first, (_, otherwise) = rules
    result = pc.binary_join_element_wise(quoted, otherwise, " ")
    for mask, reason in reversed(first):
        said = pc.binary_join_element_wise(quoted, reason, " ")
        result = pc.if_else(pc.fill_null(mask, False), said, result)
    return result


def explain(column_type: ColumnType, values: pa.Array, *, timezone: str) -> pa.Array:
    """Say why each of these raw text values (all rejected for `column_type`) was rejected."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    quoted = shown(values)
    t = prepare(_chunked(values)).combine_chunks()
    match ColumnType(column_type):
        case ColumnType.INTEGER:
            return _say(
                quoted,
                (pc.match_substring_regex(t, INTEGER_RE), "is outside the integer range"),
                (None, "is not an integer"),
            )
        case ColumnType.DECIMAL:
            return _say(
                quoted,
                (pc.match_substring_regex(t, _NON_FINITE_RE), "is not a finite number"),
                (pc.match_substring_regex(t, DECIMAL_RE), "is too large for a decimal number"),
                (None, "is not a decimal number"),
            )
        case ColumnType.BOOLEAN:
            return _say(quoted, (None, "is not a boolean (use true/false, yes/no, 1/0 or 是/否)"))
        case ColumnType.DATE:
            return _say(
                quoted,
                (
                    _date_parts(_chunked(pc.extract_regex(t, DATE_RE))).matched.combine_chunks(),
                    "is not a real calendar date",
                ),
                (None, "is not a date (expected YYYY-MM-DD)"),
            )
        case ColumnType.DATETIME:
            parts = _datetime_parts(_chunked(t), timezone)
            return _say(
                quoted,
                (pc.invert(parts.matched).combine_chunks(), "is not an ISO 8601 date and time"),
                (pc.invert(parts.real).combine_chunks(), "is not a real date and time"),
                (parts.instants.nonexistent.combine_chunks(), f"does not exist in {timezone} (clock change)"),
                (None, "is outside the years 1 to 9999"),
            )
        case ColumnType.POINT:
            lat_text, lon_text = _point_text(_chunked(t))
            lat = pc.cast(lat_text, pa.float64()).combine_chunks()
            lon = pc.cast(lon_text, pa.float64()).combine_chunks()
            return _say(
                quoted,
                (pc.or_(pc.is_null(lat), pc.is_null(lon)), _POINT_EXPECTED),
                (
                    pc.invert(pc.and_(pc.greater_equal(lat, -90.0), pc.less_equal(lat, 90.0))),
                    "has a latitude outside [-90, 90]",
                ),
                (None, "has a longitude outside [-180, 180]"),
            )
        case _:
            return _say(quoted, (None, "is not valid text"))


_POINT_EXPECTED = 'is not a point (expected "lat,lon", POINT(lon lat) or {"lat": …, "lon": …})'

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

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.ingest._columns import (
    NULL_STRING,
    NULL_TOKENS,
    NUMBER,
    Converted,
    all_true,
    any_true,
    bad_where,
    checked,
    chunked,
    keep,
    none_bad,
    numeric_type,
    prepare,
)
from zhishe.catalog.ingest._points import convert_point, point_struct, point_verdicts
from zhishe.catalog.ingest._temporal import (
    check_date,
    check_timestamps,
    convert_date,
    convert_datetime,
    date_grammar,
    datetime_verdicts,
)
from zhishe.catalog.types import ColumnType, arrow_type

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

#: Accepted boolean words, compared case-insensitively.
TRUE_TOKENS: tuple[str, ...] = ("true", "t", "yes", "y", "1", "是")
FALSE_TOKENS: tuple[str, ...] = ("false", "f", "no", "n", "0", "否")

_TRUE_SET = pa.array(list(TRUE_TOKENS))
_FALSE_SET = pa.array(list(FALSE_TOKENS))
INTEGER_RE = r"^[+-]?[0-9]+$"
DECIMAL_RE = rf"^{NUMBER}$"
_NON_FINITE_RE = r"(?i)^[+-]?(?:nan|inf|infinity)$"
_INT64_MAX = "9223372036854775807"
_INT64_MIN_ABS = "9223372036854775808"
_SHOWN_MAX = 80


# ---------------------------------------------------------------------------------------- integer


def _int_overflow(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """For text in integer grammar: True where the value does not fit in int64."""
    digits = pc.utf8_ltrim(pc.utf8_ltrim(text, characters="+-"), characters="0")
    length = pc.binary_length(digits)
    limit = pc.if_else(pc.starts_with(text, "-"), _INT64_MIN_ABS, _INT64_MAX)
    at_limit = pc.and_(pc.equal(length, 19), pc.greater(digits, limit))
    return chunked(pc.or_(pc.greater(length, 19), at_limit))


def _integer_quick(text: pa.ChunkedArray) -> Converted | None:
    """Arrow's own cast, for the common column of plain integers; None if it does not apply.

    The cast reads exactly -?[0-9]+ within the int64 range, and also hexadecimal "0x1F" (no
    sign, no whitespace), which the rules refuse: so it is only trusted when no value starts
    with 0x or 0X.
    """
    try:
        values = chunked(pc.cast(text, pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if any_true(pc.starts_with(text, "0x")) or any_true(pc.starts_with(text, "0X")):
        return None
    return Converted(values, none_bad(text))


def _integer(text: pa.ChunkedArray, *, shortcuts: bool) -> Converted:
    quick = _integer_quick(text) if shortcuts else None
    if quick is not None:
        return quick
    t, ok = checked(text, INTEGER_RE)
    if any_true(pc.greater(pc.binary_length(t), 18)):
        ok = chunked(pc.and_kleene(ok, pc.invert(_int_overflow(t))))
    good = keep(ok, t)
    if any_true(pc.starts_with(good, "+")):
        good = chunked(pc.utf8_ltrim(good, characters="+"))
    return Converted(chunked(pc.cast(good, pa.int64())), bad_where(t, ok))


# ---------------------------------------------------------------------------------------- decimal


def _decimal(text: pa.ChunkedArray) -> Converted:
    t, ok = checked(text, DECIMAL_RE)
    values = chunked(pc.cast(keep(ok, t), pa.float64()))
    finite = chunked(pc.is_finite(values))
    if not all_true(finite):
        values = keep(finite, values)
        ok = chunked(pc.and_kleene(ok, finite))
    return Converted(values, bad_where(t, ok))


def _check_finite(values: pa.ChunkedArray) -> Converted:
    finite = chunked(pc.is_finite(values))
    return Converted(keep(finite, values), bad_where(values, finite))


# ---------------------------------------------------------------------------------------- boolean


def _boolean(text: pa.ChunkedArray) -> Converted:
    t = prepare(text)
    lower = pc.utf8_lower(t)
    is_true = pc.is_in(lower, value_set=_TRUE_SET)
    known = pc.or_(is_true, pc.is_in(lower, value_set=_FALSE_SET))
    values = chunked(pc.if_else(known, is_true, pa.scalar(None, pa.bool_())))
    return Converted(values, bad_where(t, chunked(known)))


# ----------------------------------------------------------------------------------------- string


def _string(text: pa.ChunkedArray) -> Converted:
    empty = pc.equal(text, "")
    values = chunked(pc.if_else(empty, NULL_STRING, text)) if any_true(empty) else text
    return Converted(values, none_bad(text))


# ---------------------------------------------------------------------------------------- dispatch


def convert_text(
    column_type: ColumnType, text: pa.ChunkedArray, *, timezone: str, shortcuts: bool = True
) -> Converted:
    """Convert a column of raw text (pa.string()) to `column_type` under the rules above.

    Where Arrow's own parsers read a common shape exactly as the rules do, they are used for
    speed; `shortcuts=False` turns that off (the tests compare both ways).
    """
    text = chunked(text)
    if text.type != pa.string():
        text = chunked(pc.cast(text, pa.string()))
    match ColumnType(column_type):
        case ColumnType.STRING:
            return _string(text)
        case ColumnType.INTEGER:
            return _integer(text, shortcuts=shortcuts)
        case ColumnType.DECIMAL:
            return _decimal(text)
        case ColumnType.BOOLEAN:
            return _boolean(text)
        case ColumnType.DATE:
            return convert_date(text, shortcuts=shortcuts)
        case ColumnType.DATETIME:
            return convert_datetime(text, timezone, shortcuts=shortcuts)
        case ColumnType.POINT:
            return convert_point(text)
    raise AssertionError(column_type)  # pragma: no cover


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
    values = chunked(values)
    kind = values.type
    column_type = ColumnType(column_type)
    target = arrow_type(column_type)
    if pa.types.is_null(kind):
        return Converted(chunked(pa.nulls(len(values), target)), none_bad(values))
    if _is_text(kind):
        if column_type in (ColumnType.STRING, ColumnType.POINT):
            return convert_text(column_type, chunked(pc.cast(values, pa.string())), timezone=timezone)
        return None
    if column_type == ColumnType.STRING:
        if text is None:
            return None
        return convert_text(column_type, chunked(text), timezone=timezone)
    checks: dict[ColumnType, Callable[[], Converted | None]] = {
        ColumnType.INTEGER: lambda: _typed_integer(values) if pa.types.is_integer(kind) else None,
        ColumnType.DECIMAL: lambda: (
            _check_finite(chunked(pc.cast(values, pa.float64()))) if numeric_type(kind) else None
        ),
        ColumnType.BOOLEAN: lambda: (
            Converted(values, none_bad(values)) if pa.types.is_boolean(kind) else None
        ),
        ColumnType.DATE: lambda: check_date(values) if pa.types.is_date(kind) else None,
        ColumnType.DATETIME: lambda: (
            check_timestamps(values, timezone)
            if pa.types.is_timestamp(kind) or pa.types.is_date(kind)
            else None
        ),
        ColumnType.POINT: lambda: point_struct(values) if pa.types.is_struct(kind) else None,
    }
    check = checks.get(column_type)
    return check() if check is not None else None


def _typed_integer(values: pa.ChunkedArray) -> Converted:
    if values.type == pa.uint64():
        ok = chunked(pc.less_equal(values, pa.scalar(int(_INT64_MAX), pa.uint64())))
        return Converted(chunked(pc.cast(keep(ok, values), pa.int64())), bad_where(values, ok))
    return Converted(chunked(pc.cast(values, pa.int64())), none_bad(values))


# ---------------------------------------------------------------------------------------- reasons


def shown(values: pa.Array) -> pa.Array:
    """Values quoted for a message, long ones cut short: 'abc'."""
    long = pc.greater(pc.utf8_length(values), _SHOWN_MAX)
    if any_true(long):
        cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, _SHOWN_MAX - 1), "…", "")
        values = pc.if_else(long, cut, values)
    return pc.binary_join_element_wise("'", values, "'", "")


def _say(values: pa.Array, *rules: tuple[pa.Array | None, str]) -> pa.Array:
    """ "'value' reason", where the first rule whose mask is true gives the reason (the last rule
    is the default and its mask is ignored). One string per value is built, whatever the rules."""
    *first, (_, otherwise) = rules
    choice = pa.repeat(pa.scalar(len(first), pa.int8()), len(values))
    for number, (mask, _) in reversed(list(enumerate(first))):
        choice = pc.if_else(pc.fill_null(mask, False), pa.scalar(number, pa.int8()), choice)
    phrases = pc.take(pa.array([reason for _, reason in first] + [otherwise]), choice)
    return pc.binary_join_element_wise(shown(values), phrases, " ")


def explain(column_type: ColumnType, values: pa.Array, *, timezone: str) -> pa.Array:
    """Say why each of these raw text values (all rejected for `column_type`) was rejected."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    t = prepare(chunked(values)).combine_chunks()
    match ColumnType(column_type):
        case ColumnType.INTEGER:
            return _say(
                values,
                (pc.match_substring_regex(t, INTEGER_RE), "is outside the integer range"),
                (None, "is not an integer"),
            )
        case ColumnType.DECIMAL:
            return _say(
                values,
                (pc.match_substring_regex(t, _NON_FINITE_RE), "is not a finite number"),
                (pc.match_substring_regex(t, DECIMAL_RE), "is too large for a decimal number"),
                (None, "is not a decimal number"),
            )
        case ColumnType.BOOLEAN:
            return _say(values, (None, "is not a boolean (use true/false, yes/no, 1/0 or 是/否)"))
        case ColumnType.DATE:
            return _say(
                values,
                (date_grammar(chunked(t)), "is not a real calendar date"),
                (None, "is not a date (expected YYYY-MM-DD)"),
            )
        case ColumnType.DATETIME:
            verdicts = datetime_verdicts(chunked(t), timezone)
            return _say(
                values,
                (verdicts.shapeless, "is not an ISO 8601 date and time"),
                (verdicts.unreal, "is not a real date and time"),
                (verdicts.nonexistent, f"does not exist in {timezone} (clock change)"),
                (None, "is outside the years 1 to 9999"),
            )
        case ColumnType.POINT:
            shapeless, lat_out = point_verdicts(chunked(t))
            return _say(
                values,
                (shapeless, _POINT_EXPECTED),
                (lat_out, "has a latitude outside [-90, 90]"),
                (None, "has a longitude outside [-180, 180]"),
            )
        case _:
            return _say(values, (None, "is not valid text"))


_POINT_EXPECTED = 'is not a point (expected "lat,lon", POINT(lon lat) or {"lat": …, "lon": …})'

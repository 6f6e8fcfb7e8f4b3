"""Small vectorised helpers shared by the value rules: masks, nulls and the `Converted` result."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "NULL_STRING",
    "NULL_TOKENS",
    "NUMBER",
    "Converted",
    "all_true",
    "any_true",
    "bad_where",
    "checked",
    "chunked",
    "in_range",
    "int_field",
    "keep",
    "none_bad",
    "nullify",
    "numeric_type",
    "prepare",
]

#: Words that mean "no value" in columns of every type but string (the empty cell is null everywhere).
NULL_TOKENS: tuple[str, ...] = ("NULL", "null", "NA", "N/A")
NULL_STRING = pa.scalar(None, pa.string())
#: A number in plain or scientific notation (the decimal rule; also the parts of a point).
NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NULL_SET = pa.array(["", *NULL_TOKENS])


@dataclass(frozen=True, slots=True)
class Converted:
    """One column converted: typed values and where the given values were not acceptable."""

    #: Values of `arrow_type(column_type)`; null where the cell was null or bad.
    values: pa.ChunkedArray
    #: Booleans without nulls: True where a value was given but does not follow the rules.
    bad: pa.ChunkedArray


def chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """The values as a ChunkedArray (pyarrow.compute returns either, depending on its input)."""
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def any_true(mask: pa.Array | pa.ChunkedArray) -> bool:
    """True if some value of the boolean mask is true (nulls do not count)."""
    return bool(pc.any(mask).as_py())


def all_true(mask: pa.Array | pa.ChunkedArray) -> bool:
    """True if no value of the boolean mask is false (nulls do not count)."""
    return pc.all(mask).as_py() is not False


def bad_where(given: pa.ChunkedArray, ok: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where `given` has a value and `ok` is not true."""
    return chunked(pc.and_(pc.is_valid(given), pc.invert(pc.fill_null(ok, False))))


def none_bad(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """All false, one per value."""
    return chunked(pc.and_(pc.is_null(values), False))


def keep(ok: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """`values` where `ok` is true, null elsewhere (a no-op when all are ok)."""
    if all_true(ok):
        return values
    return chunked(pc.if_else(ok, values, pa.scalar(None, values.type)))


def prepare(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text of a non-string column, stripped of whitespace, with the null words turned into nulls."""
    return nullify(chunked(pc.utf8_trim_whitespace(text)))


def nullify(trimmed: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trimmed text with the empty string and the null words turned into nulls."""
    is_null = pc.is_in(trimmed, value_set=_NULL_SET)
    if any_true(is_null):
        return chunked(pc.if_else(is_null, NULL_STRING, trimmed))
    return trimmed


def checked(text: pa.ChunkedArray, pattern: str) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Prepared text and where it matches `pattern` (null where the text is null).

    The null words never match a pattern of the rules, so they are looked for only when some value
    does not match: the common all-good column costs one trim and one regex pass.
    """
    trimmed = chunked(pc.utf8_trim_whitespace(text))
    ok = chunked(pc.match_substring_regex(trimmed, pattern))
    if all_true(ok):
        return trimmed, ok
    prepared = nullify(trimmed)
    if prepared is not trimmed:
        ok = chunked(pc.if_else(pc.is_null(prepared), pa.scalar(None, pa.bool_()), ok))
    return prepared, ok


def int_field(parts: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """An optional digits group of a regex match as int64; an absent group reads as 0."""
    field = pc.struct_field(parts, name)
    field = pc.if_else(pc.equal(field, ""), "0", field)
    return chunked(pc.cast(field, pa.int64()))


def numeric_type(kind: pa.DataType) -> bool:
    """True for integer, floating point and decimal types."""
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def in_range(values: pa.ChunkedArray, low: int, high: int) -> pa.ChunkedArray:
    """True where low <= value <= high (null where the value is null)."""
    return chunked(pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high)))

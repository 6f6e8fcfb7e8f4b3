"""Guessing the column types of a file on its first import: `infer_columns`.

The guess is conservative: a type is chosen only if every value of the column follows its rule, and
text that merely looks numeric stays text when reading it as a number would lose something:
leading zeros ("001" is a code, not 1), more than 15 digits (an ID, not a quantity), or only 0 and
1 (kept as integer rather than boolean). Candidates are tried in the order boolean, integer,
decimal, date, datetime, point, string, first on a sample of the first rows and then, for the
candidate that passes, on the whole column (all vectorised).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.ingest.raw import RawTable
from zhishe.catalog.ingest.values import convert_text, prepare
from zhishe.catalog.types import Classification, ColumnSpec, ColumnType

__all__ = ["SAMPLE_ROWS", "infer_columns"]

#: Rows looked at first for every column; the chosen type is then confirmed on all rows.
SAMPLE_ROWS = 10_000
_CANDIDATES = (
    ColumnType.BOOLEAN,
    ColumnType.INTEGER,
    ColumnType.DECIMAL,
    ColumnType.DATE,
    ColumnType.DATETIME,
    ColumnType.POINT,
)
_CODE_LIKE = r"^[+-]?(?:0[0-9]|[0-9]{16,})"  # leading zero, or too many digits for a quantity
_ZONE = "UTC"  # inference only asks whether values parse; the zone does not change that


def _plausible(column_type: ColumnType, values: pa.ChunkedArray) -> bool:
    """Extra conditions on a column that follows `column_type`'s rule, to keep the guess safe."""
    match column_type:
        case ColumnType.BOOLEAN:
            return bool(pc.any(pc.invert(pc.is_in(values, value_set=pa.array(["0", "1"])))).as_py())
        case ColumnType.INTEGER | ColumnType.DECIMAL:
            return not pc.any(pc.match_substring_regex(values, _CODE_LIKE)).as_py()
        case ColumnType.POINT:
            return bool(pc.any(pc.match_substring_regex(values, r"\.")).as_py())
    return True


def _fits(column_type: ColumnType, text: pa.ChunkedArray, values: pa.ChunkedArray) -> bool:
    converted = convert_text(column_type, text, timezone=_ZONE)
    return not pc.any(converted.bad).as_py() and _plausible(column_type, values)


def _typed_guess(kind: pa.DataType) -> ColumnType | None:
    if pa.types.is_boolean(kind):
        return ColumnType.BOOLEAN
    if pa.types.is_integer(kind):
        return ColumnType.INTEGER
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return ColumnType.DECIMAL
    if pa.types.is_date(kind):
        return ColumnType.DATE
    if pa.types.is_timestamp(kind):
        return ColumnType.DATETIME
    if pa.types.is_struct(kind):
        names = {f.name.lower() for f in kind}
        if names & {"lat", "latitude"} and names & {"lon", "lng", "long", "longitude"}:
            return ColumnType.POINT
    return None


def _guess(text: pa.ChunkedArray, *, candidates: tuple[ColumnType, ...]) -> ColumnType:
    values = prepare(text)
    if values.null_count == len(values):
        return ColumnType.STRING
    sample_text, sample_values = text.slice(0, SAMPLE_ROWS), values.slice(0, SAMPLE_ROWS)
    whole = len(text) <= SAMPLE_ROWS
    for candidate in candidates:
        if sample_values.null_count < len(sample_values) and not _fits(candidate, sample_text, sample_values):
            continue
        if whole or _fits(candidate, text, values):
            return candidate
    return ColumnType.STRING


def infer_columns(raw: RawTable) -> list[ColumnSpec]:
    """Guess a `ColumnSpec` for every column of a file read with `read_raw`.

    Types are guessed as described in the module docstring; every column is INTERNAL and no column
    is a key (people decide both when they confirm the schema). Parquet columns keep the type they
    have in the file where it maps onto a column type; text columns of Parquet are string or point.
    """
    specs = []
    for name in raw.columns:
        text = raw.table.column(name)
        column_type: ColumnType | None = None
        if raw.typed is not None:
            kind = raw.typed.column(name).type
            column_type = _typed_guess(kind)
            if column_type is None:
                text_kind = pa.types.is_string(kind) or pa.types.is_large_string(kind)
                column_type = _guess(text, candidates=(ColumnType.POINT,)) if text_kind else ColumnType.STRING
        elif raw.nested.get(name) is not None and pc.any(raw.nested[name]).as_py():
            column_type = _guess(text, candidates=(ColumnType.POINT,))
        else:
            column_type = _guess(text, candidates=_CANDIDATES)
        specs.append(ColumnSpec(name=name, type=column_type, classification=Classification.INTERNAL))
    return specs

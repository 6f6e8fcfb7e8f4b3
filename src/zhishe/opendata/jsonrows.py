"""Arrow rows as JSON-ready dicts, column by column: what ``rows_to_dicts`` gives, faster.

``catalog.lake.rows_to_dicts`` turns every row into Python objects and then every value into its
JSON form, one at a time. For a page of 100 rows of 12 columns that is about 0.9 ms, as much as
the query itself. Here each column is converted as a whole: numbers, text and booleans come out of
Arrow as they are; floats are checked for NaN and infinities in one pass; timestamps are written
as ISO 8601 in the platform's zone by NumPy, with each value's UTC offset looked up once per hour
of UTC time (two zoneinfo calls per hour that the page spans); any other type goes through
``json_value`` value by value. The result is exactly ``rows_to_dicts(table, zone)`` (a property
test checks it on random tables), in about a fifth of the time for 100 rows (0.21 ms, not 0.96).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import pyarrow as pa

from zhishe.catalog.lake.render import json_value

__all__ = ["json_rows"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_US = 3_600_000_000
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
#: Local times NumPy writes the way ``datetime.isoformat`` does: years 1000 to 9999 (µs since 1970).
_FIRST_US = -30_610_224_000_000_000  # 1000-01-01T00:00:00
_END_US = 253_402_300_800_000_000  # 10000-01-01T00:00:00
#: How each Arrow type is converted, by type id: "as is" types come out of ``to_pylist`` ready
#: for JSON; types not listed go value by value through ``json_value``.
_BY_TYPE: dict[int, str] = {
    **{
        t.id: "as is"
        for t in (
            pa.bool_(),
            pa.int8(),
            pa.int16(),
            pa.int32(),
            pa.int64(),
            pa.uint8(),
            pa.uint16(),
            pa.uint32(),
            pa.uint64(),
            pa.string(),
            pa.large_string(),
        )
    },
    pa.float32().id: "float",
    pa.float64().id: "float",
    pa.timestamp("us").id: "timestamp",
    pa.null().id: "null",
}


def json_rows(table: pa.Table | pa.RecordBatch, zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """The rows of `table` as JSON-ready dicts, equal to ``rows_to_dicts(table, zone)``."""
    if table.num_columns == 0:
        return [{} for _ in range(table.num_rows)]
    names = table.schema.names
    columns = [_column(table.column(i), zone) for i in range(table.num_columns)]
    return [dict(zip(names, values)) for values in zip(*columns)]  # noqa: B905 (equal lengths)


def _column(column: pa.Array | pa.ChunkedArray, zone: tzinfo) -> list[Any]:
    kind = column.type
    how = _BY_TYPE.get(kind.id)
    if how == "as is":
        return list(column.to_pylist())
    if how == "float":
        return _floats(column)
    if how == "timestamp" and kind.unit in _UNIT_US:
        return _timestamps(column, _UNIT_US[kind.unit], zone)
    if how == "null":
        return [None] * len(column)
    return _one_by_one(column, zone)


def _floats(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    values: list[Any] = column.to_pylist()
    # A finite sum means every value is finite (a NaN or an infinity makes it NaN or infinite).
    if column.null_count == 0 and math.isfinite(sum(values)):
        return values
    return [v if v is None or math.isfinite(v) else None for v in values]


def _timestamps(column: pa.Array | pa.ChunkedArray, unit_us: int, zone: tzinfo) -> list[Any]:
    """ISO 8601 texts in `zone` of a timestamp column (naive values are UTC, as in ``json_value``)."""
    raw = column.cast(pa.int64())
    if len(raw) == 0:
        return []
    if raw.null_count:
        ints = [v for v in raw.to_pylist() if v is not None]
        if not ints:
            return [None] * len(raw)
        utc = np.array(ints, dtype=np.int64)
    else:
        utc = np.asarray(raw.to_numpy())
    if unit_us != 1:
        utc = utc * unit_us
    hours = utc // _HOUR_US
    first, last = int(hours.min()), int(hours.max())
    if first == last:
        found = [_offset(first, zone)]
        where = np.zeros(len(utc), dtype=np.intp)
    else:
        unique, where = np.unique(hours, return_inverse=True)
        found = [_offset(hour, zone) for hour in unique.tolist()]
    if any(f is None for f in found):  # an hour with a change of offset in it: value by value
        return _one_by_one(column, zone)
    known = [f for f in found if f is not None]
    local = utc + np.array([f[0] for f in known], dtype=np.int64)[where]
    if int(local.min()) < _FIRST_US or int(local.max()) >= _END_US:
        return _one_by_one(column, zone)
    texts: list[str] = np.datetime_as_string(local.astype("datetime64[us]"), unit="us").tolist()
    whole: list[bool] = (utc % 1_000_000 == 0).tolist()
    if len(known) == 1:
        suffix = known[0][1]
        out: list[Any] = [(t[:19] if w else t) + suffix for t, w in zip(texts, whole, strict=True)]
    else:
        suffixes = [known[i][1] for i in where.tolist()]
        out = [(t[:19] if w else t) + x for t, w, x in zip(texts, whole, suffixes, strict=True)]
    if raw.null_count:
        it = iter(out)
        return [None if v is None else next(it) for v in raw.to_pylist()]
    return out


#: UTC offsets already found: (zone, hour since 1970) → what ``_offset`` answered.
_OFFSETS: dict[tuple[tzinfo, int], tuple[int, str] | None] = {}
_OFFSETS_KEPT = 65_536


def _offset(hour: int, zone: tzinfo) -> tuple[int, str] | None:
    """The UTC offset (µs, and as ``isoformat`` writes it) in `zone` throughout one hour of UTC
    time (counted from 1970); None when it changes within the hour or the hour is out of range."""
    key = (zone, hour)
    if key in _OFFSETS:
        return _OFFSETS[key]
    found = _offset_now(hour, zone)
    if len(_OFFSETS) >= _OFFSETS_KEPT:
        _OFFSETS.clear()
    _OFFSETS[key] = found
    return found


def _offset_now(hour: int, zone: tzinfo) -> tuple[int, str] | None:
    try:
        start = (_EPOCH + timedelta(microseconds=hour * _HOUR_US)).astimezone(zone)
        end = (_EPOCH + timedelta(microseconds=(hour + 1) * _HOUR_US - 1)).astimezone(zone)
    except (OverflowError, ValueError):
        return None
    offset = start.utcoffset()
    if offset is None or offset != end.utcoffset():
        return None
    text = start.isoformat()
    return offset // timedelta(microseconds=1), text[len(start.replace(tzinfo=None).isoformat()) :]


def _one_by_one(column: pa.Array | pa.ChunkedArray, zone: tzinfo) -> list[Any]:
    return [json_value(v, zone) for v in column.to_pylist()]

"""Rendering Arrow rows as JSON-able Python values, for the API layer and for samples."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

import pyarrow as pa

__all__ = ["json_value", "rows_to_dicts"]


def json_value(value: Any, zone: tzinfo = UTC) -> Any:
    """One value as JSON: ISO 8601 datetimes (with the offset of `zone`, UTC by default) and dates,
    points as ``{"lat", "lon"}``.

    NaN and infinities become None, since JSON has no way to write them.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(zone).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_value(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v, zone) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def rows_to_dicts(table: pa.Table | pa.RecordBatch, zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """The rows of `table` as JSON-able dicts, in order (see `json_value`)."""
    return [{name: json_value(v, zone) for name, v in row.items()} for row in table.to_pylist()]

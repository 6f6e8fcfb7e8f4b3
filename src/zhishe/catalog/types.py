"""Column types and classifications of a dataset schema, and their Arrow storage types.

This module is the contract between the import pipeline (`catalog.ingest`), the versioned
store (`catalog.lake`) and the catalog service: each column of a dataset is a `ColumnSpec`,
and every value stored in the lake has the Arrow type that `arrow_type()` gives for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pyarrow as pa

__all__ = [
    "ROW_ID",
    "Classification",
    "ColumnSpec",
    "ColumnType",
    "arrow_schema",
    "arrow_type",
]

#: Hidden column that every lake table carries: a dataset-wide unique, increasing row id.
#: It is the tie-breaker of keyset paging and never shown to users.
ROW_ID = "_row_id"


class ColumnType(StrEnum):
    """The column types a dataset schema may declare."""

    STRING = "string"
    INTEGER = "integer"  # int64
    DECIMAL = "decimal"  # stored as float64 (IEEE double); see docs/decisions/0003
    BOOLEAN = "boolean"
    DATE = "date"  # date32, ISO 8601 calendar date
    DATETIME = "datetime"  # timestamp(us, UTC); naive input is read in the platform timezone
    POINT = "point"  # struct<lat: float64, lon: float64>, WGS 84 degrees


class Classification(StrEnum):
    """How sensitive a column's values are."""

    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"  # identifies a person
    SENSITIVE = "sensitive"  # health, finance, location trail


POINT_TYPE = pa.struct([pa.field("lat", pa.float64()), pa.field("lon", pa.float64())])

_ARROW: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.DECIMAL: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.DATETIME: pa.timestamp("us", tz="UTC"),
    ColumnType.POINT: POINT_TYPE,
}


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a dataset schema."""

    name: str
    type: ColumnType
    unit: str = ""
    description: str = ""
    is_key: bool = False
    classification: Classification = Classification.INTERNAL
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def arrow_type(column_type: ColumnType) -> pa.DataType:
    """The Arrow type in which values of `column_type` are stored."""
    return _ARROW[ColumnType(column_type)]


def arrow_schema(columns: list[ColumnSpec], *, with_row_id: bool = False) -> pa.Schema:
    """The Arrow schema of a dataset's rows (optionally with the hidden row id first)."""
    fields = [pa.field(ROW_ID, pa.int64(), nullable=False)] if with_row_id else []
    fields += [pa.field(c.name, arrow_type(c.type)) for c in columns]
    return pa.schema(fields)

"""Shared test data for the dataset store: a column set with every type and a row factory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema

# "select" and "where" are SQL keywords on purpose: identifiers must be quoted everywhere.
COLUMNS = [
    ColumnSpec("id", ColumnType.INTEGER, is_key=True),
    ColumnSpec("name", ColumnType.STRING),
    ColumnSpec("amount", ColumnType.DECIMAL),
    ColumnSpec("active", ColumnType.BOOLEAN),
    ColumnSpec("day", ColumnType.DATE),
    ColumnSpec("at", ColumnType.DATETIME),
    ColumnSpec("where", ColumnType.POINT),
    ColumnSpec("select", ColumnType.STRING),
]
NO_KEY_COLUMNS = [ColumnSpec(c.name, c.type) for c in COLUMNS]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_row(i: int, **overrides: Any) -> dict[str, Any]:
    """A deterministic row number `i` of COLUMNS."""
    row = {
        "id": i,
        "name": f"name-{i % 7}",
        "amount": i * 1.5,
        "active": i % 2 == 0,
        "day": date(2024, 1, 1) + timedelta(days=i % 30),
        "at": T0 + timedelta(hours=i),
        "where": {"lat": 30.0 + i / 100, "lon": 120.0 + i / 100},
        "select": f"s{i}",
    }
    row.update(overrides)
    return row


def table_of(rows: list[dict[str, Any]], columns: list[ColumnSpec] = COLUMNS) -> pa.Table:
    """An Arrow table typed as `arrow_schema(columns)`."""
    return pa.Table.from_pylist(rows, schema=arrow_schema(columns))

"""Parquet files keep their own types; a type that conflicts with the schema refuses the file."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zhishe.catalog.ingest import IngestError, infer_columns, load, read_raw
from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema

TZ = "Asia/Shanghai"


def _parquet(tmp_path: Path, table: pa.Table) -> Path:
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    return path


def test_string_column_where_integer_is_declared_is_a_conflict(tmp_path: Path) -> None:
    path = _parquet(tmp_path, pa.table({"name": ["a"], "n": ["not a number"]}))
    columns = [ColumnSpec("name", ColumnType.STRING), ColumnSpec("n", ColumnType.INTEGER)]
    with pytest.raises(IngestError) as caught:
        load(path, columns, timezone=TZ)
    assert caught.value.code == "type_conflict"
    assert caught.value.message == (
        "column 'n' holds string values in the Parquet file, but the dataset declares it integer"
    )


def test_compatible_types_are_converted(tmp_path: Path) -> None:
    table = pa.table(
        {
            "small": pa.array([1, None], pa.int8()),
            "price": pa.array([decimal.Decimal("1.25"), None], pa.decimal128(5, 2)),
            "day": pa.array([dt.date(2026, 1, 1), None], pa.date64()),
            "naive": pa.array([dt.datetime(2026, 1, 1, 8, 0), None], pa.timestamp("ns")),
            "aware": pa.array(
                [dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC), None], pa.timestamp("s", tz="UTC")
            ),
            "where": pa.array([{"latitude": 39.9, "longitude": 116.4}, None]),
            "code": pa.array([7, 8], pa.int64()),
            "empty": pa.nulls(2),
        }
    )
    columns = [
        ColumnSpec("small", ColumnType.INTEGER),
        ColumnSpec("price", ColumnType.DECIMAL),
        ColumnSpec("day", ColumnType.DATE),
        ColumnSpec("naive", ColumnType.DATETIME),
        ColumnSpec("aware", ColumnType.DATETIME),
        ColumnSpec("where", ColumnType.POINT),
        ColumnSpec("code", ColumnType.STRING),
        ColumnSpec("empty", ColumnType.BOOLEAN),
    ]
    result = load(_parquet(tmp_path, table), columns, timezone=TZ)
    assert result.format == "parquet" and result.issue_count == 0
    assert result.table.schema == arrow_schema(columns)
    assert result.table.to_pylist()[0] == {
        "small": 1,
        "price": 1.25,
        "day": dt.date(2026, 1, 1),
        "naive": dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC),
        "aware": dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC),
        "where": {"lat": 39.9, "lon": 116.4},
        "code": "7",
        "empty": None,
    }


def test_value_rules_still_apply_to_typed_values(tmp_path: Path) -> None:
    table = pa.table(
        {
            "x": pa.array([1.5, float("nan"), float("inf")]),
            "n": pa.array([1, 2**63, 3], pa.uint64()),
            "where": pa.array([{"lat": 1.0, "lon": 2.0}, {"lat": 95.0, "lon": 2.0}, None]),
        }
    )
    columns = [
        ColumnSpec("x", ColumnType.DECIMAL),
        ColumnSpec("n", ColumnType.INTEGER),
        ColumnSpec("where", ColumnType.POINT),
    ]
    result = load(_parquet(tmp_path, table), columns, timezone=TZ)
    assert result.bad_rows == [2, 3]
    assert [(i.row, i.column, i.reason) for i in result.issues] == [
        (2, "x", "'nan' is not a finite number"),
        (2, "n", "'9223372036854775808' is outside the integer range"),
        (2, "where", '\'{"lat":95.0,"lon":2.0}\' has a latitude outside [-90, 90]'),
        (3, "x", "'inf' is not a finite number"),
    ]
    assert result.reject_table().column("_reason")[1].as_py() == "x: 'inf' is not a finite number"


def test_parquet_raw_table_has_typed_table_and_text_view(tmp_path: Path) -> None:
    table = pa.table({"n": [1, 2], "ok": [True, None], "day": [dt.date(2026, 1, 1), None], "s": ["a", "b"]})
    raw = read_raw(_parquet(tmp_path, table))
    assert raw.typed is not None and raw.typed.schema == table.schema
    assert raw.table.to_pylist() == [
        {"n": "1", "ok": "true", "day": "2026-01-01", "s": "a"},
        {"n": "2", "ok": None, "day": None, "s": "b"},
    ]
    types = [s.type for s in infer_columns(raw)]
    assert types == [ColumnType.INTEGER, ColumnType.BOOLEAN, ColumnType.DATE, ColumnType.STRING]


def test_damaged_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    assert caught.value.code == "invalid_parquet"


def test_duplicate_column_names_in_parquet_are_refused(tmp_path: Path) -> None:
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a "])
    with pytest.raises(IngestError) as caught:
        read_raw(_parquet(tmp_path, table))
    assert caught.value.code == "duplicate_header"

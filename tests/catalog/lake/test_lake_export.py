"""Exports: every format round-trips the rows, values rendered as the API renders them."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lake_helpers import COLUMNS, make_row

from zhishe.catalog.lake import LakeQueryError, WriteResult, export, parse_filter, read, rows_to_dicts

Writer = Callable[..., WriteResult]


@pytest.fixture
def rows_written(uri: str, writer: Writer) -> str:
    rows = [make_row(i) for i in range(5)]
    rows[1].update(
        name='名称, "quoted"\nline',
        amount=None,
        where=None,
        at=datetime(2024, 5, 1, 8, 30, 0, 250, tzinfo=UTC),
    )
    rows[2].update(amount=float("nan"))
    writer(rows)
    writer([make_row(9, at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(microseconds=1))])
    return uri


def expected(uri: str) -> list[dict[str, object]]:
    return rows_to_dicts(read(uri, columns=COLUMNS, limit=100).rows)


def test_ndjson_and_json_exports_equal_the_api_rendering(rows_written: str, tmp_path: Path) -> None:
    lines_path, array_path = tmp_path / "out.ndjson", tmp_path / "out.json"
    assert export(rows_written, columns=COLUMNS, fmt="ndjson", dest=lines_path) == 6
    assert export(rows_written, columns=COLUMNS, fmt="json", dest=array_path) == 6
    lines = [json.loads(line) for line in lines_path.read_text(encoding="utf-8").splitlines()]
    assert lines == expected(rows_written)
    assert json.loads(array_path.read_text(encoding="utf-8")) == lines
    assert lines[1]["at"] == "2024-05-01T08:30:00.000250+00:00"
    assert lines[2]["amount"] is None  # NaN has no JSON form


def test_csv_export_has_a_header_iso_datetimes_and_lat_lon_points(rows_written: str, tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert export(rows_written, columns=COLUMNS, fmt="csv", dest=path) == 6
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == [c.name for c in COLUMNS]
    api = expected(rows_written)
    assert [r["name"] for r in table] == [r["name"] for r in api]
    assert [r["at"] for r in table] == [r["at"] for r in api]
    assert table[0]["where"] == "30.0,120.0"
    assert table[1]["where"] == "" and table[1]["amount"] == ""
    assert table[0]["day"] == "2024-01-01" and table[0]["active"] == "true"
    assert [datetime.fromisoformat(r["at"]) for r in table][-1] == datetime(
        2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC
    )


def test_parquet_export_keeps_stored_types(rows_written: str, tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    assert export(rows_written, columns=COLUMNS, fmt="parquet", dest=path) == 6
    exported, stored = pq.read_table(path), read(rows_written, columns=COLUMNS, limit=100).rows
    assert exported.schema.equals(stored.schema)
    assert rows_to_dicts(exported) == rows_to_dicts(stored)  # (Table.equals calls NaN unequal to itself)


def test_export_applies_select_where_and_version(rows_written: str, tmp_path: Path) -> None:
    path = tmp_path / "few.ndjson"
    count = export(
        rows_written,
        columns=COLUMNS,
        version=0,
        select=["id", "name"],
        where=parse_filter({"column": "id", "op": ">=", "value": 3}),
        fmt="ndjson",
        dest=path,
    )
    assert count == 2
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"id": 3, "name": "name-3"},
        {"id": 4, "name": "name-4"},
    ]


def test_an_empty_export_is_still_a_valid_file(rows_written: str, tmp_path: Path) -> None:
    where = parse_filter({"column": "id", "op": ">", "value": 100})
    assert export(rows_written, columns=COLUMNS, where=where, fmt="json", dest=tmp_path / "e.json") == 0
    assert json.loads((tmp_path / "e.json").read_text()) == []
    assert export(rows_written, columns=COLUMNS, where=where, fmt="csv", dest=tmp_path / "e.csv") == 0
    assert (tmp_path / "e.csv").read_text().splitlines()[0].startswith('"id"')


def test_a_failed_export_leaves_no_file(rows_written: str, tmp_path: Path) -> None:
    with pytest.raises(LakeQueryError):
        export(rows_written, columns=COLUMNS, select=["nope"], fmt="csv", dest=tmp_path / "x.csv")
    with pytest.raises(LakeQueryError, match="format"):
        export(rows_written, columns=COLUMNS, fmt="xlsx", dest=tmp_path / "x.xlsx")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [tmp_path / "dataset"]

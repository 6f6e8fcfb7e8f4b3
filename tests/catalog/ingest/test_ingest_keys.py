"""Duplicate and null keys within one file, named by row, before an upsert."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from zhishe.catalog.ingest import DuplicateKey, duplicate_keys, load
from zhishe.catalog.types import ColumnSpec, ColumnType


def test_duplicate_keys_name_their_rows() -> None:
    table = pa.table({"station": ["a", "b", "a", "c", "a", "b"], "day": [1, 1, 1, 1, 1, 2]})
    assert duplicate_keys(table, ["station", "day"]) == [
        DuplicateKey(key={"station": "a", "day": 1}, rows=[1, 3, 5])
    ]
    found = duplicate_keys(table, ["station"])
    assert [(d.key, d.rows) for d in found] == [({"station": "a"}, [1, 3, 5]), ({"station": "b"}, [2, 6])]
    assert found[0].message == "key station='a' appears in rows 1, 3, 5"


def test_null_key_parts_are_reported_even_once() -> None:
    table = pa.table({"station": ["a", None, "b", None], "day": [1, 1, None, 1]})
    found = duplicate_keys(table, ["station", "day"])
    assert [(d.kind, d.key, d.rows) for d in found] == [
        ("null", {"station": None, "day": 1}, [2, 4]),
        ("null", {"station": "b", "day": None}, [3]),
    ]
    assert found[1].message == "key column(s) day are empty in row(s) 3"


def test_no_duplicates_gives_an_empty_list() -> None:
    assert duplicate_keys(pa.table({"k": [1, 2, 3]}), ["k"]) == []


def test_limit_caps_the_keys_reported() -> None:
    table = pa.table({"k": [i // 2 for i in range(100)]})
    found = duplicate_keys(table, ["k"], limit=3)
    assert [d.rows for d in found] == [[1, 2], [3, 4], [5, 6]]


def test_rows_are_file_rows_when_bad_rows_were_left_out(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("k,v\n1,a\nx,b\n2,c\n1,d\n", encoding="utf-8")
    columns = [ColumnSpec("k", ColumnType.INTEGER, is_key=True), ColumnSpec("v", ColumnType.STRING)]
    result = load(path, columns, timezone="UTC")
    assert result.bad_rows == [2]
    found = duplicate_keys(result.table, ["k"], row_numbers=result.row_numbers)
    assert [d.rows for d in found] == [[1, 4]]


def test_key_columns_are_required() -> None:
    with pytest.raises(ValueError, match="key column"):
        duplicate_keys(pa.table({"k": [1]}), [])

"""XLSX workbooks: the first sheet, cells read as the value rules expect, merged cells refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from zhishe.catalog.ingest import IngestError, infer_columns, load, read_raw
from zhishe.catalog.types import ColumnSpec, ColumnType

TZ = "Asia/Shanghai"


def _book(
    tmp_path: Path, rows: list[list[Any]], merges: tuple[str, ...] = (), name: str = "data.xlsx"
) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for ref in merges:
        sheet.merge_cells(ref)
    book.create_sheet("ignored").append(["not", "read"])
    path = tmp_path / name
    book.save(path)
    return path


def test_merged_header_cells_are_refused_naming_the_range(tmp_path: Path) -> None:
    path = _book(tmp_path, [["name", "value", None], ["a", 1, "2026-01-01"]], merges=("B1:C1",))
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    assert caught.value.code == "merged_header"
    assert caught.value.message == (
        "header cells B1:C1 are merged; unmerge them and give each column its own name"
    )


def test_a_merged_title_row_above_the_table_is_reported_as_a_merged_header(tmp_path: Path) -> None:
    rows = [["居民信息表", None, None], ["姓名", "年龄", "住址"], ["张三", 30, "1号楼"]]
    path = _book(tmp_path, rows, merges=("A1:C1",))
    with pytest.raises(IngestError, match="A1:C1"):
        read_raw(path)


def test_merged_data_cells_are_refused(tmp_path: Path) -> None:
    rows = [["building", "flat"], ["1号楼", "101"], [None, "102"], [None, "103"]]
    path = _book(tmp_path, rows, merges=("A2:A4",))
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    assert caught.value.code == "merged_cells"
    assert "A2:A4" in caught.value.message


def test_cells_become_text_the_value_rules_read(tmp_path: Path) -> None:
    rows = [
        ["name", "n", "x", "day", "at", "ok"],
        ["a", 1, 2.5, dt.date(2026, 1, 5), dt.datetime(2026, 1, 5, 8, 30), True],
        ["b", 3.0, 1e-7, dt.datetime(2026, 1, 6), dt.datetime(2026, 1, 6, 0, 0, 1), False],
        [None, None, None, None, None, None],
        ["c", None, "", None, None, None],  # openpyxl does not store the empty string
    ]
    raw = read_raw(_book(tmp_path, rows))
    assert raw.format == "xlsx" and raw.row_count == 3
    assert raw.table.to_pylist() == [
        {"name": "a", "n": "1", "x": "2.5", "day": "2026-01-05", "at": "2026-01-05 08:30:00", "ok": "true"},
        {
            "name": "b",
            "n": "3",
            "x": "1e-07",
            "day": "2026-01-06",
            "at": "2026-01-06 00:00:01",
            "ok": "false",
        },
        {"name": "c", "n": None, "x": None, "day": None, "at": None, "ok": None},
    ]
    types = {spec.name: spec.type for spec in infer_columns(raw)}
    assert types == {
        "name": ColumnType.STRING,
        "n": ColumnType.INTEGER,
        "x": ColumnType.DECIMAL,
        "day": ColumnType.DATE,
        "at": ColumnType.DATETIME,
        "ok": ColumnType.BOOLEAN,
    }


def test_xlsx_loads_into_typed_rows_with_issues(tmp_path: Path) -> None:
    rows = [["name", "n", "day"], ["a", 1, "2026-01-01"], ["b", "two", dt.date(2026, 1, 2)]]
    columns = [
        ColumnSpec("name", ColumnType.STRING),
        ColumnSpec("n", ColumnType.INTEGER),
        ColumnSpec("day", ColumnType.DATE),
    ]
    result = load(_book(tmp_path, rows), columns, timezone=TZ)
    assert result.encoding == "binary"
    assert result.table.to_pylist() == [{"name": "a", "n": 1, "day": dt.date(2026, 1, 1)}]
    assert [(i.row, i.column, i.value) for i in result.issues] == [(2, "n", "two")]


def test_value_right_of_the_header_is_a_ragged_row(tmp_path: Path) -> None:
    path = _book(tmp_path, [["name", "n"], ["a", 1], ["b", 2, "stray"]])
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    assert caught.value.code == "ragged_row"
    assert "row 2 (sheet row 3) has a value in cell C3" in caught.value.message


def test_blank_header_cell_is_named_by_its_cell(tmp_path: Path) -> None:
    path = _book(tmp_path, [["name", None, "day"], ["a", 1, "2026-01-01"]])
    with pytest.raises(IngestError, match="cell B1"):
        read_raw(path)


def test_header_only_and_empty_sheets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as caught:
        read_raw(_book(tmp_path, [["name", "n"]], name="header.xlsx"))
    assert caught.value.code == "header_only"
    with pytest.raises(IngestError) as caught:
        read_raw(_book(tmp_path, [], name="empty.xlsx"))
    assert caught.value.code == "empty_file"


def test_a_damaged_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    assert caught.value.code == "invalid_xlsx"

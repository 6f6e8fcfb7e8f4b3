"""Validation results: issues sorted and capped, counts complete, rejects downloadable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from zhishe.catalog.ingest import ImportIssue, IngestError, load, read_raw, validate
from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema

TZ = "Asia/Shanghai"
COLUMNS = [
    ColumnSpec("id", ColumnType.INTEGER),
    ColumnSpec("x", ColumnType.DECIMAL),
    ColumnSpec("when", ColumnType.DATETIME),
]


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_more_than_the_issue_limit_lists_the_first_and_counts_all(tmp_path: Path) -> None:
    lines = ["id,x,when"] + [f"{i},bad{i},2026-01-01 00:00" for i in range(1, 1_501)]
    lines += [f"{i},1.5,2026-01-01 00:00" for i in range(1_501, 1_601)]
    result = load(_write(tmp_path, lines), COLUMNS, timezone=TZ)
    assert result.issue_count == 1_500
    assert len(result.issues) == 1_000
    assert [i.row for i in result.issues] == list(range(1, 1_001))
    assert result.issues_by_column == {"x": 1_500}
    assert len(result.bad_rows) == 1_500
    assert result.table.num_rows == 100
    assert result.reject_table().num_rows == 1_500


def test_max_issues_is_respected(tmp_path: Path) -> None:
    lines = ["id,x,when"] + [f"a{i},b{i},c{i}" for i in range(20)]
    result = load(_write(tmp_path, lines), COLUMNS, timezone=TZ, max_issues=5)
    assert result.issue_count == 60 and len(result.issues) == 5


def test_issues_are_sorted_by_row_then_schema_column(tmp_path: Path) -> None:
    lines = ["when,x,id", "2026-01-01,1,1", "never,oops,two", "2026-01-01,nan,3"]
    result = load(_write(tmp_path, lines), COLUMNS, timezone=TZ)
    assert result.issues == [
        ImportIssue(2, "id", "two", "'two' is not an integer"),
        ImportIssue(2, "x", "oops", "'oops' is not a decimal number"),
        ImportIssue(2, "when", "never", "'never' is not an ISO 8601 date and time"),
        ImportIssue(3, "x", "nan", "'nan' is not a finite number"),
    ]
    assert result.bad_rows == [2, 3]
    assert result.issues_by_column == {"id": 1, "x": 2, "when": 1}
    assert result.row_numbers.to_pylist() == [1]


def test_reject_table_has_original_text_row_and_all_reasons(tmp_path: Path) -> None:
    lines = ["when,x,id", "2026-01-01,1,1", " never ,oops,two"]
    result = load(_write(tmp_path, lines), COLUMNS, timezone=TZ)
    rejects = result.reject_table()
    assert rejects.column_names == ["when", "x", "id", "_row", "_reason"]
    assert rejects.to_pylist() == [
        {
            "when": " never ",
            "x": "oops",
            "id": "two",
            "_row": 2,
            "_reason": "id: 'two' is not an integer; x: 'oops' is not a decimal number; "
            "when: ' never ' is not an ISO 8601 date and time",
        }
    ]
    out = tmp_path / "rejects.csv"
    pacsv.write_csv(rejects, out)
    assert out.read_text(encoding="utf-8").startswith('"when","x","id","_row","_reason"')


def test_clean_file_has_an_empty_reject_table_with_the_file_columns(tmp_path: Path) -> None:
    result = load(_write(tmp_path, ["id,x,when", "1,2.5,2026-01-01T08:00+08:00"]), COLUMNS, timezone=TZ)
    assert result.issue_count == 0 and result.bad_rows == [] and result.issues == []
    assert result.table.to_pylist() == [{"id": 1, "x": 2.5, "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}]
    assert result.reject_table().column_names == ["id", "x", "when", "_row", "_reason"]
    assert result.reject_table().num_rows == 0


def test_validate_works_on_an_already_read_file(tmp_path: Path) -> None:
    raw = read_raw(_write(tmp_path, ["id,x,when", "1,2.5,2026-01-01", "2,x,2026-01-02"]))
    result = validate(raw, COLUMNS, timezone="UTC")
    assert result.table.schema == arrow_schema(COLUMNS)
    assert result.table.column("when").to_pylist() == [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    assert result.bad_rows == [2] and result.row_count == 2 and result.format == "csv"


def test_columns_must_match_exactly(tmp_path: Path) -> None:
    raw = read_raw(_write(tmp_path, ["id,x", "1,2"]))
    with pytest.raises(IngestError) as caught:
        validate(raw, COLUMNS, timezone=TZ)
    assert caught.value.detail["missing"] == ["when"]
    assert caught.value.message == "the file lacks the column(s) 'when'"


def test_all_rows_bad_gives_an_empty_typed_table(tmp_path: Path) -> None:
    result = load(_write(tmp_path, ["id,x,when", "a,b,c"]), COLUMNS, timezone=TZ)
    assert result.table.num_rows == 0
    assert result.table.schema == arrow_schema(COLUMNS)
    assert result.row_numbers.type == pa.int64()

"""CSV and TSV files, hostile and friendly: every problem names its row, line, column or value."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from zhishe.catalog.ingest import IngestError, load, read_raw
from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema

TZ = "Asia/Shanghai"
SIMPLE = [
    ColumnSpec("name", ColumnType.STRING),
    ColumnSpec("n", ColumnType.INTEGER),
    ColumnSpec("day", ColumnType.DATE),
]


def _write(tmp_path: Path, content: bytes | str, name: str = "data.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def test_ragged_row_names_row_line_and_field_counts(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\na,1,2026-01-01\nb,2,2026-01-02,extra\nc,3,2026-01-03\n")
    with pytest.raises(IngestError) as caught:
        load(path, SIMPLE, timezone=TZ)
    assert caught.value.code == "ragged_row"
    assert caught.value.message == "row 2 (line 3) has 4 fields, the header has 3"
    assert caught.value.detail["row"] == 2


def test_short_row_is_ragged_too(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\na,1,2026-01-01\nb,2\n")
    with pytest.raises(IngestError, match="row 2 \\(line 3\\) has 2 fields, the header has 3"):
        read_raw(path)


def test_unclosed_quote_names_the_line_where_it_starts(tmp_path: Path) -> None:
    lines = ["name,n,day"] + [f"r{i},{i},2026-01-01" for i in range(1, 7)]
    lines += ['"r7,7,2026-01-01', "r8,8,2026-01-02", "r9,9,2026-01-03"]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(IngestError) as caught:
        load(path, SIMPLE, timezone=TZ)
    assert caught.value.code == "unclosed_quote"
    assert caught.value.message.startswith("unclosed quote starting on line 8")


def test_unclosed_quote_that_swallows_the_rest_silently_is_still_caught(tmp_path: Path) -> None:
    # pyarrow reads this without complaint: the last value runs to the end of the file.
    path = _write(tmp_path, 'name,n,day\na,1,2026-01-01\nb,2,"2026-01-02\nc,3,2026-01-03\n')
    with pytest.raises(IngestError, match="unclosed quote starting on line 3"):
        read_raw(path)


def test_unclosed_quote_on_the_last_line_without_newline_is_caught(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name,n,day\na,1,2026-01-01\nb,2,"2026-01-02')
    with pytest.raises(IngestError, match="unclosed quote starting on line 3"):
        load(path, SIMPLE, timezone=TZ)


def test_quoted_newlines_and_delimiters_are_values(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name,n,day\n"a, with comma",1,2026-01-01\n"multi\nline",2,2026-01-02')
    result = load(path, SIMPLE, timezone=TZ)
    assert result.table.column("name").to_pylist() == ["a, with comma", "multi\nline"]


def test_gbk_file_with_chinese_headers_and_values_imports_as_chinese(tmp_path: Path) -> None:
    text = "站点,日期,数值\n东四,2026-01-01,1\n天坛,2026-01-02,2\n"
    path = _write(tmp_path, text, encoding="gbk")
    columns = [
        ColumnSpec("站点", ColumnType.STRING),
        ColumnSpec("日期", ColumnType.DATE),
        ColumnSpec("数值", ColumnType.INTEGER),
    ]
    result = load(path, columns, timezone=TZ)
    assert result.encoding == "gb18030"
    assert result.table.column_names == ["站点", "日期", "数值"]
    assert result.table.column("站点").to_pylist() == ["东四", "天坛"]
    assert read_raw(path).columns == ["站点", "日期", "数值"]


def test_gbk_text_after_a_long_ascii_start_is_still_read_as_chinese(tmp_path: Path) -> None:
    rows = [f"row{i},{i},2026-01-01" for i in range(80_000)] + ["张三,1,2026-01-01"]
    path = _write(tmp_path, "name,n,day\n" + "\n".join(rows) + "\n", encoding="gbk")
    result = load(path, SIMPLE, timezone=TZ, encoding="utf-8")  # a wrong guess from the head
    assert result.encoding == "gb18030"
    assert result.table.column("name")[-1].as_py() == "张三"


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "\ufeffname,n,day\na,1,2026-01-01\n")
    raw = read_raw(path)
    assert raw.encoding == "utf-8-sig"
    assert raw.columns == ["name", "n", "day"]
    assert load(path, SIMPLE, timezone=TZ).table.num_rows == 1


def test_header_names_are_stripped(tmp_path: Path) -> None:
    path = _write(tmp_path, " name ,n\u3000,\tday\na,1,2026-01-01\n")
    assert read_raw(path).columns == ["name", "n", "day"]


@pytest.mark.parametrize(
    "content", [b"", b"   \n\n", b"\xef\xbb\xbf"], ids=["zero-bytes", "blank", "bom-only"]
)
def test_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(IngestError) as caught:
        load(path, SIMPLE, timezone=TZ)
    assert caught.value.code == "empty_file"


def test_header_only_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\n")
    for attempt in (lambda: load(path, SIMPLE, timezone=TZ), lambda: read_raw(path)):
        with pytest.raises(IngestError) as caught:
            attempt()
        assert caught.value.code == "header_only"
        assert "no data rows" in caught.value.message


def test_duplicate_header_names_are_refused_naming_both_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,name \na,1,b\n")
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    assert caught.value.code == "duplicate_header"
    assert "'name' twice, in column 1 and column 3" in caught.value.message


def test_blank_header_name_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,,day\na,1,2026-01-01\n")
    with pytest.raises(IngestError, match="no name in column 2") as caught:
        read_raw(path)
    assert caught.value.code == "blank_header"


def test_missing_and_extra_columns_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,Day,colour\na,2026-01-01,red\n")
    with pytest.raises(IngestError) as caught:
        load(path, SIMPLE, timezone=TZ)
    error = caught.value
    assert error.code == "column_mismatch"
    assert error.detail["missing"] == ["n", "day"] and error.detail["extra"] == ["Day", "colour"]
    assert "'Day' for 'day'" in error.message


def test_wrong_type_in_row_50000_of_a_large_file_is_reported_and_good_rows_kept(tmp_path: Path) -> None:
    lines = ["name,n,day"] + [f"r{i},{i},2026-01-01" for i in range(1, 60_001)]
    lines[50_000] = "r50000,fifty,2026-01-01"
    path = _write(tmp_path, "\n".join(lines) + "\n")
    result = load(path, SIMPLE, timezone=TZ)
    assert result.bad_rows == [50_000]
    assert result.issue_count == 1
    issue = result.issues[0]
    assert (issue.row, issue.column, issue.value) == (50_000, "n", "fifty")
    assert issue.reason == "'fifty' is not an integer"
    assert result.table.num_rows == 59_999
    assert result.table.schema == arrow_schema(SIMPLE)
    assert result.row_count == 60_000
    assert 50_000 not in result.table.column("n").to_pylist()
    assert result.row_numbers[49_999].as_py() == 50_001  # the row after the bad one
    rejects = result.reject_table()
    assert rejects.to_pylist() == [
        {
            "name": "r50000",
            "n": "fifty",
            "day": "2026-01-01",
            "_row": 50_000,
            "_reason": "n: 'fifty' is not an integer",
        }
    ]


def test_tsv_with_csv_extension_is_sniffed(tmp_path: Path) -> None:
    path = _write(tmp_path, "name\tn\tday\na, b\t1\t2026-01-01\n")
    result = load(path, SIMPLE, timezone=TZ)
    assert result.format == "tsv"
    assert result.table.column("name").to_pylist() == ["a, b"]


def test_blank_lines_are_skipped_and_not_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\n\na,1,2026-01-01\n\nb,x,2026-01-02\n\n")
    result = load(path, SIMPLE, timezone=TZ)
    assert result.row_count == 2
    assert result.bad_rows == [2]


def test_crlf_line_ends_and_no_final_newline(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\r\na,1,2026-01-01\r\nb,2,2026/1/2")
    result = load(path, SIMPLE, timezone=TZ)
    assert result.table.column("day").to_pylist() == [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]


def test_empty_cells_are_null_in_every_type_and_null_words_outside_strings(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\n,,\nNULL,NULL,NA\nN/A,N/A,null\n")
    result = load(path, SIMPLE, timezone=TZ)
    assert result.issue_count == 0
    assert result.table.to_pylist() == [
        {"name": None, "n": None, "day": None},
        {"name": "NULL", "n": None, "day": None},
        {"name": "N/A", "n": None, "day": None},
    ]


def test_columns_come_out_in_schema_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "day,n,name\n2026-01-01,1,a\n")
    result = load(path, SIMPLE, timezone=TZ)
    assert result.table.column_names == ["name", "n", "day"]
    assert result.table.schema == arrow_schema(SIMPLE)


def test_raw_table_keeps_text_as_written(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\n a ,007,2026-01-01\n")
    raw = read_raw(path)
    assert raw.format == "csv" and raw.row_count == 1
    assert raw.table.schema == pa.schema([(n, pa.string()) for n in ("name", "n", "day")])
    assert raw.table.to_pylist() == [{"name": " a ", "n": "007", "day": "2026-01-01"}]


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x1f\x8b\x08\x00binary", name="data.csv.gz")
    with pytest.raises(IngestError, match="compressed") as caught:
        read_raw(path)
    assert caught.value.code == "unsupported_format"


def test_a_legitimate_multiline_value_in_the_last_row_is_not_an_unclosed_quote(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name,n,day\na,1,2026-01-01\n"two\nlines",2,2026-01-02\n')
    assert load(path, SIMPLE, timezone=TZ).table.column("name").to_pylist() == ["a", "two\nlines"]


def test_ingest_errors_survive_pickling_for_process_pools(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\na,1\n")
    with pytest.raises(IngestError) as caught:
        read_raw(path)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.code, copy.message, copy.detail) == (
        caught.value.code,
        caught.value.message,
        caught.value.detail,
    )
    assert copy.detail["code"] == "ragged_row"


def test_an_unknown_time_zone_is_a_programming_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "name,n,day\na,1,2026-01-01\n")
    with pytest.raises(ValueError, match="unknown time zone"):
        load(path, SIMPLE, timezone="Mars/Olympus_Mons")


def test_utf8_with_a_broken_byte_is_refused_naming_the_line_not_read_as_mojibake(tmp_path: Path) -> None:
    text = "name,n,day\n" + "".join(f"居民{i},{i},2026-01-01\n" for i in range(50))
    data = text.encode() + b"bad\xff,1,2026-01-01\n"
    path = _write(tmp_path, data)
    with pytest.raises(IngestError) as caught:
        load(path, SIMPLE, timezone=TZ)
    assert caught.value.code == "bad_encoding"
    assert "line 52" in caught.value.message


def test_gbk_with_a_broken_byte_is_refused_naming_the_line_not_read_as_another_encoding(
    tmp_path: Path,
) -> None:
    text = "name,n,day\n" + "".join(f"居民{i},{i},2026-01-01\n" for i in range(50))
    path = _write(tmp_path, text.encode("gbk") + b"bad\xff,1,2026-01-01\n")
    with pytest.raises(IngestError) as caught:
        load(path, SIMPLE, timezone=TZ)
    assert caught.value.code == "bad_encoding"
    assert "not valid gb18030 text: line 52" in caught.value.message


def test_a_wrong_encoding_from_the_caller_is_corrected_before_the_header_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "站点,日期,数值\n东四,2026-01-01,1\n", encoding="gbk")
    columns = [
        ColumnSpec("站点", ColumnType.STRING),
        ColumnSpec("日期", ColumnType.DATE),
        ColumnSpec("数值", ColumnType.INTEGER),
    ]
    result = load(path, columns, timezone=TZ, encoding="utf-8")
    assert result.encoding == "gb18030" and result.table.num_rows == 1
    assert read_raw(path, encoding="utf-8").columns == ["站点", "日期", "数值"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_only_a_file_with_quotes_is_read_as_possibly_holding_multiline_values(
    tmp_path: Path, encoding: str
) -> None:
    from zhishe.catalog.ingest._csv import _may_quote, open_csv

    path = tmp_path / "data.csv"
    path.write_bytes("名称,说明\n甲,一\n乙,二\n".encode(encoding))
    assert _may_quote(open_csv(path, fmt="csv", encoding=encoding)) is False
    path.write_bytes('名称,说明\n甲,"一\n行"\n乙,二\n'.encode(encoding))
    assert _may_quote(open_csv(path, fmt="csv", encoding=encoding)) is True
    columns = [ColumnSpec("名称", ColumnType.STRING), ColumnSpec("说明", ColumnType.STRING)]
    assert load(path, columns, timezone="UTC").table.column("说明").to_pylist() == ["一\n行", "二"]

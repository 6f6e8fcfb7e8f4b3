"""The fast ways accept and convert exactly what the rules do.

* The CSV fast path (pyarrow parses while it reads): whenever it produces a result, the full text
  validation of the same file must produce the same table with no issues; when it declines, `load`
  falls back to the full validation, so those cases agree by construction.
* The shortcuts inside the text rules (Arrow's casts for plain integers, dates and ISO date-times)
  must agree value for value with the rules' own implementation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhishe.catalog.ingest import load, read_raw, validate
from zhishe.catalog.ingest._csv import open_csv
from zhishe.catalog.ingest.validation import _fast_csv
from zhishe.catalog.ingest.values import convert_text
from zhishe.catalog.types import ColumnSpec, ColumnType

TZ = "Asia/Shanghai"

# Values that sit on the edges of the rules or of pyarrow's own parsers.
TRICKY = [
    "",
    " ",
    "NULL",
    "null",
    "NA",
    "N/A",
    " NULL",
    "Null",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-Infinity",
    "+inf",
    "0x10",
    "0X1f",
    "-0x1",
    "+5",
    "-0",
    "007",
    " 42",
    "42 ",
    "\t7",
    "1.",
    ".5",
    ".",
    "-.5e-3",
    "1e",
    "1e+",
    "1e999",
    "-1e999",
    "1e-999",
    "1,000",
    "1_000",
    "１２",
    "0.0",
    "+.5",
    "1.0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "true",
    "TRUE",
    "True",
    "tRuE",
    "t",
    "F",
    "yes",
    "Y",
    "no",
    "1",
    "0",
    "是",
    "否",
    " true",
    "2024-01-05",
    "2024/01/05",
    "2024-1-5",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2023-02-29",
    "2024-02-29",
    "2023-02-30",
    "2024-13-01",
    "+2024-01-05",
    " 2024-01-05 ",
    "2024-01-05T10",
    "2024-01-05T10:00",
    "2024-01-05 10:00:00",
    "2024-01-05 10:00:00.123456",
    "2024-01-05 10:00:00.1234567",
    "2024-01-05 10:00:00.",
    "2024-01-05 24:00",
    "2024-01-05 23:59:60",
    "2024-01-05T10:00Z",
    "2024-01-05T10:00:00+08:00",
    "2024-01-05T10:00+0800",
    "2024-01-05T10+08",
    "2024-01-05T10:00+24:00",
    "1988-04-17 02:30",
    "0001-01-01 07:00",
    "39.9,116.4",
    "91,0",
    "POINT(116.4 39.9)",
    '{"lat": 1, "lon": 2}',
    "x",
]

_int_text = st.integers(-(2**63), 2**63 - 1).map(str)
_float_text = st.floats(allow_nan=True, allow_infinity=True).flatmap(
    lambda x: st.sampled_from([repr(x), f"{x:e}", f"{x:.3f}", f"{x:G}", str(x).upper()])
)
_date_text = st.dates(min_value=dt.date(1, 1, 1)).flatmap(
    lambda d: st.sampled_from([d.isoformat(), d.strftime("%Y/%m/%d"), f"{d.year:04d}-{d.month}-{d.day}"])
)
_datetime_text = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)).flatmap(
    lambda t: st.sampled_from(
        [
            t.isoformat(sep=" "),
            t.isoformat(timespec="minutes"),
            t.isoformat(timespec="seconds") + "Z",
            t.isoformat(timespec="milliseconds") + "+05:30",
            t.strftime("%Y/%m/%d %H:%M"),
            t.date().isoformat(),
        ]
    )
)
_bool_text = st.sampled_from(
    ["true", "false", "TRUE", "False", "t", "f", "yes", "NO", "y", "n", "1", "0", "是", "否"]
)
_point_text = st.tuples(st.floats(-90, 90), st.floats(-180, 180)).flatmap(
    lambda p: st.sampled_from(
        [f"{p[0]},{p[1]}", f"POINT({p[1]} {p[0]})", f'{{"lat": {p[0]}, "lon": {p[1]}}}']
    )
)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)

GOOD = {
    ColumnType.INTEGER: _int_text,
    ColumnType.DECIMAL: _float_text,
    ColumnType.BOOLEAN: _bool_text,
    ColumnType.DATE: _date_text,
    ColumnType.DATETIME: _datetime_text,
    ColumnType.POINT: _point_text,
    ColumnType.STRING: _text,
}


@st.composite
def _columns(draw: st.DrawFn) -> tuple[ColumnType, list[str]]:
    column_type = draw(st.sampled_from(list(GOOD)))
    value = st.one_of(GOOD[column_type], st.sampled_from(TRICKY), _text)
    # mostly good values, so that the fast path often gets to finish
    good_only = draw(st.booleans())
    values = draw(st.lists(GOOD[column_type] if good_only else value, min_size=1, max_size=8))
    return column_type, values


def _csv_bytes(values: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["v", "k"])
    for number, value in enumerate(values):
        writer.writerow([value, number])
    return out.getvalue().encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_columns())
def test_fast_path_and_full_validation_agree(case: tuple[ColumnType, list[str]]) -> None:
    column_type, values = case
    columns = [ColumnSpec("v", column_type), ColumnSpec("k", ColumnType.INTEGER)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(_csv_bytes(values))
        slow = validate(read_raw(path), columns, timezone=TZ)
        fast = _fast_csv(open_csv(path, fmt="csv", encoding="utf-8"), columns, fmt="csv", timezone=TZ)
        if fast is not None:
            assert slow.issue_count == 0, (values, slow.issues)
            assert fast.table.equals(slow.table), (values, fast.table.to_pylist(), slow.table.to_pylist())
        loaded = load(path, columns, timezone=TZ)
        assert loaded.table.equals(slow.table)
        assert loaded.issues == slow.issues and loaded.bad_rows == slow.bad_rows


@pytest.mark.parametrize("column_type", list(ColumnType))
def test_every_edge_value_gets_the_same_verdict_on_both_paths(
    tmp_path: Path, column_type: ColumnType
) -> None:
    columns = [ColumnSpec("v", column_type), ColumnSpec("k", ColumnType.INTEGER)]
    path = tmp_path / "data.csv"
    for value in TRICKY:
        path.write_bytes(_csv_bytes([value]))
        slow = validate(read_raw(path), columns, timezone=TZ)
        fast = _fast_csv(open_csv(path, fmt="csv", encoding="utf-8"), columns, fmt="csv", timezone=TZ)
        if fast is not None:
            assert slow.issue_count == 0, (value, slow.issues)
            assert fast.table.equals(slow.table), value


def test_fast_path_runs_on_a_clean_file_and_declines_on_values_pyarrow_would_misread(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    columns = [ColumnSpec("x", ColumnType.DECIMAL), ColumnSpec("d", ColumnType.DATE)]
    path.write_text("x,d\n1.5,2024-01-05\n,NULL\n", encoding="utf-8")
    source = open_csv(path, fmt="csv", encoding="utf-8")
    assert _fast_csv(source, columns, fmt="csv", timezone=TZ) is not None
    for bad in ("x,d\nNaN,2024-01-05\n", "x,d\n1,0000-01-01\n"):
        path.write_text(bad, encoding="utf-8")
        source = open_csv(path, fmt="csv", encoding="utf-8")
        assert _fast_csv(source, columns, fmt="csv", timezone=TZ) is None
        assert load(path, columns, timezone=TZ).bad_rows == [1]


def test_fast_path_result_is_typed_by_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("b,i\nYes,0x10\n", encoding="utf-8")
    columns = [ColumnSpec("b", ColumnType.BOOLEAN), ColumnSpec("i", ColumnType.INTEGER)]
    result = load(path, columns, timezone=TZ)
    assert result.bad_rows == [1]  # pyarrow would have read 0x10 as 16
    assert result.table.schema == pa.schema([("b", pa.bool_()), ("i", pa.int64())])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([ColumnType.INTEGER, ColumnType.DATE, ColumnType.DATETIME]).flatmap(
        lambda t: st.tuples(
            st.just(t), st.lists(st.one_of(GOOD[t], st.sampled_from(TRICKY)), min_size=1, max_size=6)
        )
    ),
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "UTC"]),
)
def test_rule_shortcuts_agree_with_the_rules_own_implementation(
    case: tuple[ColumnType, list[str]], timezone: str
) -> None:
    column_type, values = case
    for batch in [values, *([v] for v in values)]:  # together, and each alone (the shortcut applies more)
        text = pa.chunked_array([batch], pa.string())
        quick = convert_text(column_type, text, timezone=timezone)
        rule = convert_text(column_type, text, timezone=timezone, shortcuts=False)
        assert quick.bad.to_pylist() == rule.bad.to_pylist(), batch
        assert quick.values.to_pylist() == rule.values.to_pylist(), batch


def test_text_columns_converted_in_pieces_agree_with_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Large files convert their text columns in row ranges on several threads. Each piece may
    # take another of the rules' shortcuts (here: naive times, times with an offset, then both
    # mixed), and the result must still be the full validation's, row for row.
    from zhishe.catalog.ingest import validation

    monkeypatch.setattr(validation, "_PIECE_ROWS", 4)
    monkeypatch.setattr(validation.os, "cpu_count", lambda: 3)
    times = (
        ["2024-03-10 08:00:00"] * 4
        + [
            "2024-03-10T08:00:00+08:00",
            "2024-03-10T00:00:00Z",
            "2024-03-31T01:30:00.5+01:00",
            "2024-1-2T3:04",
        ]
        + ["2024-03-10 08:00", "2024-03-10T08:00:00-05:30", "2024-03-10", ""]
    )
    rows = [
        {"t": t, "i": str(n * 7 - 20), "s": f"值{n}", "x": f"{n}.25", "d": f"2024-02-{n + 1:02d}"}
        for n, t in enumerate(times)
    ]
    path = tmp_path / "data.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    columns = [
        ColumnSpec("t", ColumnType.DATETIME),
        ColumnSpec("i", ColumnType.INTEGER),
        ColumnSpec("s", ColumnType.STRING),
        ColumnSpec("x", ColumnType.DECIMAL),
        ColumnSpec("d", ColumnType.DATE),
    ]
    assert len(validation._ranges(len(rows))) == 3
    fast = _fast_csv(open_csv(path, fmt="csv", encoding="utf-8"), columns, fmt="csv", timezone=TZ)
    slow = validate(read_raw(path), columns, timezone=TZ)
    assert fast is not None and slow.issue_count == 0
    assert fast.table.column("t").num_chunks == 3  # it did convert in pieces
    assert fast.table.equals(slow.table), (fast.table.to_pylist(), slow.table.to_pylist())


def test_a_bad_value_in_any_piece_falls_back_to_the_full_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhishe.catalog.ingest import validation

    monkeypatch.setattr(validation, "_PIECE_ROWS", 3)
    monkeypatch.setattr(validation.os, "cpu_count", lambda: 4)
    values = [str(n) for n in range(12)]
    values[10] = "1O"  # a letter O, in the last piece
    path = tmp_path / "data.csv"
    path.write_bytes(_csv_bytes(values))
    columns = [ColumnSpec("v", ColumnType.INTEGER), ColumnSpec("k", ColumnType.INTEGER)]
    assert _fast_csv(open_csv(path, fmt="csv", encoding="utf-8"), columns, fmt="csv", timezone=TZ) is None
    result = load(path, columns, timezone=TZ)
    assert result.bad_rows == [11] and [(i.row, i.column, i.value) for i in result.issues] == [
        (11, "v", "1O")
    ]

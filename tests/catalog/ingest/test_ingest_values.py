"""The value rules, one type at a time: what is accepted, what it becomes, and why the rest is not."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from zhishe.catalog.ingest import LoadResult, RawTable, validate
from zhishe.catalog.types import ColumnSpec, ColumnType

UTC = dt.UTC


def _check(column_type: ColumnType, values: list[str | None], timezone: str = "Asia/Shanghai") -> LoadResult:
    table = pa.table({"v": pa.array(values, pa.string())})
    raw = RawTable(table=table, format="csv", encoding="utf-8", row_count=len(values), columns=["v"])
    return validate(raw, [ColumnSpec("v", column_type)], timezone=timezone)


def _accepts(column_type: ColumnType, text: str, timezone: str = "Asia/Shanghai") -> Any:
    result = _check(column_type, [text], timezone)
    assert result.issue_count == 0, result.issues
    return result.table.column("v")[0].as_py()


def _reason(column_type: ColumnType, text: str, timezone: str = "Asia/Shanghai") -> str:
    result = _check(column_type, [text], timezone)
    assert result.bad_rows == [1], f"{text!r} was accepted"
    return result.issues[0].reason


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("+5", 5),
        ("-0", 0),
        ("007", 7),
        (" 42 ", 42),
        ("\u300012\u3000", 12),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_integers_are_a_sign_and_digits(text: str, value: int) -> None:
    assert _accepts(ColumnType.INTEGER, text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.5", "'1.5' is not an integer"),
        ("1.0", "'1.0' is not an integer"),
        ("1,000", "'1,000' is not an integer"),
        ("1e3", "'1e3' is not an integer"),
        ("0x10", "'0x10' is not an integer"),
        ("１２", "'１２' is not an integer"),
        ("abc", "'abc' is not an integer"),
        ("9223372036854775808", "'9223372036854775808' is outside the integer range"),
        ("-0009223372036854775809", "'-0009223372036854775809' is outside the integer range"),
    ],
)
def test_integer_errors_say_why(text: str, reason: str) -> None:
    assert _reason(ColumnType.INTEGER, text) == reason


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.5", 1.5),
        ("-2", -2.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("6.02e23", 6.02e23),
        ("-1E-3", -0.001),
        ("+0.0", 0.0),
    ],
)
def test_decimals_are_plain_or_scientific(text: str, value: float) -> None:
    assert _accepts(ColumnType.DECIMAL, text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NaN", "'NaN' is not a finite number"),
        ("-inf", "'-inf' is not a finite number"),
        ("1e999", "'1e999' is too large for a decimal number"),
        ("1,000.5", "'1,000.5' is not a decimal number"),
        (".", "'.' is not a decimal number"),
        ("1e", "'1e' is not a decimal number"),
        ("0x1p3", "'0x1p3' is not a decimal number"),
    ],
)
def test_decimal_errors_say_why(text: str, reason: str) -> None:
    assert _reason(ColumnType.DECIMAL, text) == reason


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("FALSE", False),
        ("t", True),
        ("F", False),
        ("Yes", True),
        ("no", False),
        ("Y", True),
        ("n", False),
        ("1", True),
        ("0", False),
        ("是", True),
        ("否", False),
        (" tRuE ", True),
    ],
)
def test_booleans_accept_common_words_in_any_case(text: str, value: bool) -> None:
    assert _accepts(ColumnType.BOOLEAN, text) is value


def test_boolean_errors_list_the_accepted_words() -> None:
    assert (
        _reason(ColumnType.BOOLEAN, "maybe")
        == "'maybe' is not a boolean (use true/false, yes/no, 1/0 or 是/否)"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2024/02/29", dt.date(2024, 2, 29)),
        ("2024/1/5", dt.date(2024, 1, 5)),
        ("0001-01-01", dt.date(1, 1, 1)),
        ("9999-12-31", dt.date(9999, 12, 31)),
    ],
)
def test_dates_are_real_calendar_days(text: str, value: dt.date) -> None:
    assert _accepts(ColumnType.DATE, text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2023-02-30", "'2023-02-30' is not a real calendar date"),
        ("2023-02-29", "'2023-02-29' is not a real calendar date"),
        ("2023-13-01", "'2023-13-01' is not a real calendar date"),
        ("0000-01-01", "'0000-01-01' is not a real calendar date"),
        ("2023-01/05", "'2023-01/05' is not a date (expected YYYY-MM-DD)"),
        ("05/01/2023", "'05/01/2023' is not a date (expected YYYY-MM-DD)"),
        ("2023-01-05T00:00", "'2023-01-05T00:00' is not a date (expected YYYY-MM-DD)"),
    ],
)
def test_date_errors_say_why(text: str, reason: str) -> None:
    assert _reason(ColumnType.DATE, text) == reason


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # naive values are local times in the import's time zone (Asia/Shanghai, UTC+8)
        ("2024-05-01 08:30", dt.datetime(2024, 5, 1, 0, 30, tzinfo=UTC)),
        ("2024-05-01T08:30:15", dt.datetime(2024, 5, 1, 0, 30, 15, tzinfo=UTC)),
        ("2024-05-01 08:30:15.123456", dt.datetime(2024, 5, 1, 0, 30, 15, 123456, tzinfo=UTC)),
        ("2024-05-01 08:30:15.1234567", dt.datetime(2024, 5, 1, 0, 30, 15, 123456, tzinfo=UTC)),
        ("2024/5/1 8:30", dt.datetime(2024, 5, 1, 0, 30, tzinfo=UTC)),
        ("2024-05-01", dt.datetime(2024, 4, 30, 16, 0, tzinfo=UTC)),
        # values with an offset are converted from it
        ("2024-05-01T08:30:00Z", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T08:30:00+08:00", dt.datetime(2024, 5, 1, 0, 30, tzinfo=UTC)),
        ("2024-05-01 08:30-05:30", dt.datetime(2024, 5, 1, 14, 0, tzinfo=UTC)),
        ("2024-05-01T08:30+0100", dt.datetime(2024, 5, 1, 7, 30, tzinfo=UTC)),
        ("2024-05-01T08:30:00.5+01", dt.datetime(2024, 5, 1, 7, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_datetimes_naive_are_local_and_offsets_are_honoured(text: str, value: dt.datetime) -> None:
    assert _accepts(ColumnType.DATETIME, text) == value


def test_a_column_mixing_naive_and_offset_datetimes_converts_each_correctly() -> None:
    result = _check(ColumnType.DATETIME, ["2024-05-01 08:00", "2024-05-01T08:00Z", None, "", "NULL"])
    assert result.issue_count == 0
    assert result.table.column("v").to_pylist() == [
        dt.datetime(2024, 5, 1, 0, 0, tzinfo=UTC),
        dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        None,
        None,
        None,
    ]
    assert result.table.schema.field("v").type == pa.timestamp("us", tz="UTC")


def test_naive_datetimes_follow_the_given_time_zone_and_its_daylight_saving() -> None:
    assert _accepts(ColumnType.DATETIME, "2024-07-01 12:00", "Europe/Berlin") == dt.datetime(
        2024, 7, 1, 10, 0, tzinfo=UTC
    )
    assert _accepts(ColumnType.DATETIME, "2024-01-01 12:00", "Europe/Berlin") == dt.datetime(
        2024, 1, 1, 11, 0, tzinfo=UTC
    )
    # clocks go back at 03:00 on 2024-10-27: 02:30 happens twice, the earlier one is taken
    assert _accepts(ColumnType.DATETIME, "2024-10-27 02:30", "Europe/Berlin") == dt.datetime(
        2024, 10, 27, 0, 30, tzinfo=UTC
    )
    assert _reason(ColumnType.DATETIME, "2024-03-31 02:30", "Europe/Berlin") == (
        "'2024-03-31 02:30' does not exist in Europe/Berlin (clock change)"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-02-30 10:00", "'2024-02-30 10:00' is not a real date and time"),
        ("2024-05-01 24:00", "'2024-05-01 24:00' is not a real date and time"),
        ("2024-05-01 23:59:60", "'2024-05-01 23:59:60' is not a real date and time"),
        ("2024-05-01T10:00+24:00", "'2024-05-01T10:00+24:00' is not a real date and time"),
        ("2024-05-01T10", "'2024-05-01T10' is not an ISO 8601 date and time"),
        ("01/05/2024 10:00", "'01/05/2024 10:00' is not an ISO 8601 date and time"),
        ("yesterday", "'yesterday' is not an ISO 8601 date and time"),
        ("0001-01-01 00:00", "'0001-01-01 00:00' is outside the years 1 to 9999"),
    ],
)
def test_datetime_errors_say_why(text: str, reason: str) -> None:
    assert _reason(ColumnType.DATETIME, text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "39.91,116.40",
        " 39.91 , 116.40 ",
        "39.91，116.40",
        "POINT(116.40 39.91)",
        "point ( 116.40   39.91 )",
        '{"lat": 39.91, "lon": 116.40}',
        '{"lng":116.40,"lat":39.91}',
        '{"long": 116.4e0, "lat": 39.91}',
    ],
)
def test_points_are_lat_lon_wkt_or_json(text: str) -> None:
    value = _accepts(ColumnType.POINT, text)
    assert value == pytest.approx({"lat": 39.91, "lon": 116.40})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("91,0", "'91,0' has a latitude outside [-90, 90]"),
        ("POINT(181 0)", "'POINT(181 0)' has a longitude outside [-180, 180]"),
        ('{"lat": 1, "lat": 2}', "is not a point"),
        ("39.9 116.4", "is not a point"),
        ("POINT(1)", "is not a point"),
        ("nan,1", "is not a point"),
    ],
)
def test_point_errors_say_why(text: str, reason: str) -> None:
    assert reason in _reason(ColumnType.POINT, text)


def test_strings_are_kept_as_written_and_only_empty_is_null() -> None:
    result = _check(ColumnType.STRING, ["", " ", "NULL", "N/A", " x ", None])
    assert result.table.column("v").to_pylist() == [None, " ", "NULL", "N/A", " x ", None]


@pytest.mark.parametrize("column_type", [t for t in ColumnType if t != ColumnType.STRING])
def test_null_words_are_null_for_every_other_type(column_type: ColumnType) -> None:
    result = _check(column_type, ["", "NULL", "null", "NA", "N/A", "  ", None])
    assert result.issue_count == 0
    assert result.table.column("v").null_count == 7


def test_long_values_are_cut_short_in_reasons_but_kept_whole_in_issues() -> None:
    text = "x" * 500
    result = _check(ColumnType.INTEGER, [text])
    assert result.issues[0].value == text
    assert len(result.issues[0].reason) < 120

"""jsonrows.json_rows gives exactly what rows_to_dicts gives, for every column type and zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from zhishe.catalog.lake.render import rows_to_dicts
from zhishe.opendata.jsonrows import json_rows

#: Zones with half-hour and 45-minute offsets, summer time both sides of the equator, and (Monrovia
#: before 1972, Shanghai before 1901) offsets in seconds.
ZONES = [
    "UTC",
    "Asia/Shanghai",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "Africa/Monrovia",
    "Europe/London",
]
MOMENTS = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30))
#: Instants around the 2025 summer-time changes of New York and London.
CHANGES = st.sampled_from(
    [datetime(2025, 3, 9, 7), datetime(2025, 11, 2, 6), datetime(2025, 3, 30, 1), datetime(2025, 10, 26, 1)]
).flatmap(lambda at: st.integers(-7200, 7200).map(lambda s: at + timedelta(seconds=s)))


def _micros(moment: datetime) -> int:
    return (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 30))

    def values(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(st.none() | strategy, min_size=rows, max_size=rows))

    moments = values((MOMENTS | CHANGES).map(_micros))
    whole = [None if m is None else m // 1_000_000 * 1_000_000 for m in moments]
    unit = draw(st.sampled_from(["s", "ms", "us"]))
    per_unit = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    return pa.table(
        {
            "n": pa.array(values(st.integers(-(2**63), 2**63 - 1)), type=pa.int64()),
            "small": pa.array(values(st.integers(-128, 127)), type=pa.int8()),
            "x": pa.array(values(st.floats(allow_nan=True, allow_infinity=True)), type=pa.float64()),
            "x32": pa.array(values(st.floats(width=32)), type=pa.float32()),
            "s": pa.array(values(st.text()), type=pa.string()),
            "ok": pa.array(values(st.booleans()), type=pa.bool_()),
            "day": pa.array(values(st.dates(date(1000, 1, 1))), type=pa.date32()),
            "ts": pa.array(moments, type=pa.timestamp("us", tz=draw(st.sampled_from(ZONES)))),
            "whole": pa.array(whole, type=pa.timestamp("us", tz="UTC")),
            "naive": pa.array(
                [None if m is None else m // per_unit for m in moments], type=pa.timestamp(unit)
            ),
            "loc": pa.array(
                values(st.fixed_dictionaries({"lat": st.floats(), "lon": st.floats()})),
                type=pa.struct([("lat", pa.float64()), ("lon", pa.float64())]),
            ),
            "nothing": pa.nulls(rows),
        }
    )


@settings(max_examples=300, deadline=None)
@given(table=tables(), zone=st.sampled_from(ZONES))
def test_json_rows_equal_rows_to_dicts_on_random_tables(table: pa.Table, zone: str) -> None:
    assert json_rows(table, ZoneInfo(zone)) == rows_to_dicts(table, ZoneInfo(zone))


def test_timestamps_in_an_hour_with_a_change_of_offset_are_written_one_by_one() -> None:
    # New York falls back at 06:00 UTC on 2 November 2025: 01:30 happens twice.
    at = [datetime(2025, 11, 2, 5, 30, tzinfo=UTC), datetime(2025, 11, 2, 6, 30, tzinfo=UTC)]
    table = pa.table({"ts": pa.array(at, type=pa.timestamp("us", tz="UTC"))})
    rows = json_rows(table, ZoneInfo("America/New_York"))
    assert rows == [{"ts": "2025-11-02T01:30:00-04:00"}, {"ts": "2025-11-02T01:30:00-05:00"}]


def test_whole_seconds_drop_the_fraction_and_others_keep_six_digits() -> None:
    at = [datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 0, 0, 1, 500, tzinfo=UTC)]
    table = pa.table({"ts": pa.array(at, type=pa.timestamp("us", tz="UTC"))})
    assert json_rows(table, ZoneInfo("Asia/Shanghai")) == [
        {"ts": "2025-01-01T08:00:00+08:00"},
        {"ts": "2025-01-01T08:00:01.000500+08:00"},
    ]


def test_non_finite_floats_become_null_and_a_table_without_columns_keeps_its_rows() -> None:
    table = pa.table({"x": pa.array([1.5, float("nan"), float("inf"), None])})
    assert json_rows(table) == [{"x": 1.5}, {"x": None}, {"x": None}, {"x": None}]
    no_columns = pa.table({"x": [1, 2]}).drop_columns(["x"])
    assert json_rows(no_columns) == rows_to_dicts(no_columns) == [{}, {}]

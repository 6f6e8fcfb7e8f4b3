"""Cadences, due dates, overdue days, missing periods, resolution guessing and schema changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from zhishe.core.errors import Invalid
from zhishe.opendata import timeliness
from zhishe.opendata.timeliness import (
    CADENCES,
    Change,
    infer_resolution,
    is_definition_change,
    missing_periods,
    next_due,
    overdue_days,
    schema_changes,
)

SH = ZoneInfo("Asia/Shanghai")
FREQ = "http://publications.europa.eu/resource/authority/frequency/"


def sh(*args: int) -> datetime:
    """A wall-clock time in Shanghai, as an aware datetime."""
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


# --- cadences ---------------------------------------------------------------------------------------


def test_cadences_have_their_iso_durations_and_eu_frequencies() -> None:
    table = {name: (c.duration, c.frequency.removeprefix(FREQ)) for name, c in CADENCES.items()}

    assert table == {
        "hourly": ("PT1H", "HOURLY"),
        "daily": ("P1D", "DAILY"),
        "weekly": ("P1W", "WEEKLY"),
        "monthly": ("P1M", "MONTHLY"),
        "quarterly": ("P3M", "QUARTERLY"),
        "annual": ("P1Y", "ANNUAL"),
        "continuous": (None, "UPDATE_CONT"),
        "irregular": (None, "IRREG"),
        "never": (None, "NEVER"),
    }


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("yearly", "annual"),
        (FREQ + "DAILY", "daily"),
        ("P3M", "quarterly"),
        (" Weekly ", "weekly"),
        ("IRREG", "irregular"),
    ],
)
def test_cadence_aliases_and_eu_iris_are_understood(given: str, name: str) -> None:
    assert timeliness.cadence_of(given).name == name


def test_an_unknown_cadence_is_refused() -> None:
    with pytest.raises(Invalid, match="unknown cadence 'fortnightly'"):
        timeliness.cadence_of("fortnightly")


# --- next due and overdue -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "last", "due"),
    [
        ("hourly", sh(2024, 3, 1, 23, 30), sh(2024, 3, 2, 0, 30)),
        ("daily", sh(2024, 2, 28, 9, 0), sh(2024, 2, 29, 9, 0)),
        ("weekly", sh(2024, 12, 30, 9, 0), sh(2025, 1, 6, 9, 0)),
        ("monthly", sh(2024, 1, 31, 10, 0), sh(2024, 2, 29, 10, 0)),  # leap year, clamped
        ("monthly", sh(2023, 1, 31, 10, 0), sh(2023, 2, 28, 10, 0)),
        ("monthly", sh(2024, 12, 15, 0, 0), sh(2025, 1, 15, 0, 0)),
        ("quarterly", sh(2023, 11, 30, 8, 0), sh(2024, 2, 29, 8, 0)),
        ("quarterly", sh(2024, 3, 31, 8, 0), sh(2024, 6, 30, 8, 0)),
        ("annual", sh(2024, 2, 29, 12, 0), sh(2025, 2, 28, 12, 0)),
        ("yearly", sh(2023, 7, 1, 0, 0), sh(2024, 7, 1, 0, 0)),
    ],
)
def test_next_due_is_calendar_aware(cadence: str, last: datetime, due: datetime) -> None:
    assert next_due(last, cadence) == due


def test_next_due_counts_months_in_the_platform_zone_not_in_utc() -> None:
    last = datetime(2024, 1, 30, 17, 0, tzinfo=UTC)  # 31 January 01:00 in Shanghai

    assert next_due(last, "monthly", "Asia/Shanghai") == datetime(2024, 2, 28, 17, 0, tzinfo=UTC)
    assert next_due(last, "monthly", "UTC") == datetime(2024, 2, 29, 17, 0, tzinfo=UTC)


def test_next_due_is_utc_and_adds_the_grace_period() -> None:
    due = next_due(sh(2024, 5, 1, 8, 0), "daily", grace=timedelta(hours=6))

    assert due == datetime(2024, 5, 2, 6, 0, tzinfo=UTC)
    assert due is not None and due.tzinfo is UTC


@pytest.mark.parametrize("cadence", ["irregular", "never", "continuous", None, ""])
def test_non_periodic_datasets_are_never_due_nor_overdue(cadence: str | None) -> None:
    last = sh(2000, 1, 1, 0, 0)

    assert next_due(last, cadence) is None
    assert overdue_days(last, cadence, sh(2030, 1, 1, 0, 0)) == 0


def test_overdue_days_round_up_and_are_zero_until_due() -> None:
    last = sh(2024, 1, 31, 10, 0)  # monthly: due 2024-02-29 10:00

    assert overdue_days(last, "monthly", sh(2024, 2, 1, 0, 0)) == 0
    assert overdue_days(last, "monthly", sh(2024, 2, 29, 10, 0)) == 0
    assert overdue_days(last, "monthly", sh(2024, 2, 29, 10, 0, 1)) == 1
    assert overdue_days(last, "monthly", sh(2024, 3, 2, 22, 0)) == 3
    assert overdue_days(last, "monthly", sh(2024, 3, 2, 22, 0), grace=timedelta(days=3)) == 0


def test_overdue_days_works_with_utc_now_and_quarter_boundaries() -> None:
    last = datetime(2024, 3, 31, 16, 0, tzinfo=UTC)  # 1 April 00:00 in Shanghai: next due 1 July

    assert overdue_days(last, "quarterly", datetime(2024, 6, 30, 15, 59, tzinfo=UTC)) == 0
    assert overdue_days(last, "quarterly", datetime(2024, 7, 10, 16, 0, tzinfo=UTC)) == 10


def test_naive_datetimes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_due(datetime(2024, 1, 1), "daily")
    with pytest.raises(ValueError, match="timezone-aware"):
        overdue_days(sh(2024, 1, 1), "daily", datetime(2024, 2, 1))


# --- missing periods ------------------------------------------------------------------------------


def _ranges(values: object, resolution: str, tz: str = "Asia/Shanghai") -> list[tuple[str, str, int]]:
    gaps = missing_periods(values, resolution, tz)  # type: ignore[arg-type]
    return [(p.start.isoformat(), p.end.isoformat(), p.count) for p in gaps.ranges]


def test_daily_gaps_are_compact_ranges_across_a_leap_day() -> None:
    days = [date(2024, 2, 26), date(2024, 2, 27), date(2024, 3, 1), date(2024, 3, 3), date(2024, 3, 4)]

    gaps = missing_periods(days, "daily")

    assert [(p.start, p.end, p.count) for p in gaps.ranges] == [
        (sh(2024, 2, 28, 0, 0), sh(2024, 3, 1, 0, 0), 2),  # 28 and 29 February
        (sh(2024, 3, 2, 0, 0), sh(2024, 3, 3, 0, 0), 1),
    ]
    assert (gaps.total_ranges, gaps.total_missing, gaps.present, gaps.truncated) == (2, 3, 5, False)


def test_no_leap_day_is_missing_in_a_common_year() -> None:
    assert _ranges([date(2023, 2, 28), date(2023, 3, 1)], "daily") == []


def test_unsorted_values_duplicates_nulls_and_resets_are_fine() -> None:
    values = [sh(2024, 1, 5, 10, 0), sh(2024, 1, 1, 9, 0), None, sh(2024, 1, 5, 23, 0), sh(2024, 1, 1, 1, 0)]

    assert _ranges(values, "daily") == [("2024-01-02T00:00:00+08:00", "2024-01-05T00:00:00+08:00", 3)]


def test_months_are_counted_in_the_platform_zone() -> None:
    # 16:30 UTC on 31 December is already 1 January in Shanghai.
    values = pa.array(
        [datetime(2023, 10, 15, tzinfo=UTC), datetime(2023, 12, 31, 16, 30, tzinfo=UTC)],
        pa.timestamp("us", tz="UTC"),
    )

    assert _ranges(values, "monthly") == [("2023-11-01T00:00:00+08:00", "2024-01-01T00:00:00+08:00", 2)]
    assert _ranges(values, "monthly", "UTC") == [
        ("2023-11-01T00:00:00+00:00", "2023-12-01T00:00:00+00:00", 1)
    ]


def test_quarters_start_in_january_april_july_and_october() -> None:
    values = [sh(2023, 3, 31, 23, 59), datetime(2024, 3, 31, 16, 0, tzinfo=UTC)]  # Q1 2023, Q2 2024

    gaps = missing_periods(values, "quarterly")

    assert [(p.start, p.end, p.count) for p in gaps.ranges] == [
        (sh(2023, 4, 1, 0, 0), sh(2024, 4, 1, 0, 0), 4)
    ]


def test_weeks_start_on_monday() -> None:
    values = [date(2024, 1, 7), date(2024, 1, 8), date(2024, 1, 29)]  # a Sunday, then Mondays

    assert _ranges(values, "weekly") == [("2024-01-15T00:00:00+08:00", "2024-01-29T00:00:00+08:00", 2)]


def test_hourly_and_annual_gaps() -> None:
    hours = [sh(2024, 1, 1, 0, 5), sh(2024, 1, 1, 1, 59), sh(2024, 1, 1, 4, 0)]
    years = [date(2019, 6, 1), date(2020, 2, 29), date(2024, 12, 31)]

    assert _ranges(hours, "hourly") == [("2024-01-01T02:00:00+08:00", "2024-01-01T04:00:00+08:00", 2)]
    assert _ranges(years, "annual") == [("2021-01-01T00:00:00+08:00", "2024-01-01T00:00:00+08:00", 3)]


def test_the_list_of_ranges_is_capped_but_the_totals_count_everything() -> None:
    every_other_day = [date(2024, 1, 1) + timedelta(days=2 * i) for i in range(50)]

    gaps = missing_periods(every_other_day, "daily", limit=3)

    assert len(gaps.ranges) == 3
    assert (gaps.total_ranges, gaps.total_missing, gaps.truncated) == (49, 49, True)
    assert gaps.to_json()["ranges"][0] == {
        "start": "2024-01-02T00:00:00+08:00",
        "end": "2024-01-03T00:00:00+08:00",
        "count": 1,
    }


@pytest.mark.parametrize(
    "values",
    [[], [None, None], pa.array([], pa.date32()), pa.chunked_array([], pa.timestamp("us", tz="UTC"))],
)
def test_empty_input_has_no_gaps(values: object) -> None:
    gaps = missing_periods(values, "daily")  # type: ignore[arg-type]

    assert (gaps.ranges, gaps.total_ranges, gaps.total_missing, gaps.present) == ([], 0, 0, 0)


def test_arrow_dates_chunked_arrays_and_naive_timestamps() -> None:
    chunked = pa.chunked_array([pa.array([date(2024, 1, 1)]), pa.array([date(2024, 1, 4)])])
    naive = pa.array([datetime(2024, 1, 1, 23, 0), datetime(2024, 1, 3, 0, 30)], pa.timestamp("s"))

    assert _ranges(chunked, "daily") == [("2024-01-02T00:00:00+08:00", "2024-01-04T00:00:00+08:00", 2)]
    assert _ranges(naive, "daily") == [("2024-01-02T00:00:00+08:00", "2024-01-03T00:00:00+08:00", 1)]


def test_ten_million_values_are_handled_in_one_vectorised_pass() -> None:
    start = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    micros = start + np.arange(10_000_000, dtype=np.int64) * 60_000_000  # every minute, 19 years
    hours = micros // 3_600_000_000
    micros = micros[(hours % 1000 != 7) & (hours % 1000 != 8)]  # two missing hours in every 1000
    values = pa.array(micros, pa.timestamp("us", tz="UTC"))

    gaps = missing_periods(values, "hourly")

    assert gaps.total_ranges == gaps.total_missing // 2 == len(np.unique(hours[hours % 1000 == 7]))
    assert [p.count for p in gaps.ranges] == [2] * 100
    assert gaps.truncated and gaps.total_ranges > 100
    assert missing_periods(values, "daily").total_missing == 0


def test_a_non_periodic_resolution_is_refused() -> None:
    with pytest.raises(Invalid, match="'irregular' is not a resolution"):
        missing_periods([date(2024, 1, 1)], "irregular")


def test_a_column_that_is_not_time_is_refused() -> None:
    with pytest.raises(Invalid, match="dates or timestamps"):
        missing_periods(pa.array([1, 2, 3]), "daily")


# --- infer_resolution -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([sh(2024, 1, 1, h, 0) for h in range(10)], "hourly"),
        ([date(2024, 1, d) for d in range(1, 20)] + [date(2024, 1, 25)], "daily"),
        ([date(2024, 1, 1) + timedelta(weeks=w) for w in range(8)], "weekly"),
        ([date(2023, m, 1) for m in range(1, 13)], "monthly"),
        ([date(2023, m, 1) for m in (1, 4, 7, 10)] + [date(2024, 1, 1)], "quarterly"),
        ([date(y, 1, 1) for y in range(2015, 2025)], "annual"),
        ([sh(2024, 1, 1, 0, m) for m in range(0, 60, 5)], None),
        ([date(2024, 1, 1)], None),
        ([date(2024, 1, 1), date(2024, 1, 1)], None),
        ([], None),
    ],
)
def test_infer_resolution_from_the_median_step(values: list[date], expected: str | None) -> None:
    assert infer_resolution(values) == expected


def test_infer_resolution_ignores_order_and_duplicates() -> None:
    days = [date(2024, 1, 1) + timedelta(days=d) for d in (5, 1, 1, 3, 2, 4, 4, 0)]

    assert infer_resolution(pa.array(days, pa.date32())) == "daily"


# --- schema changes -------------------------------------------------------------------------------

OLD = [
    {"name": "station", "type": "string", "unit": "", "description": "监测站"},
    {"name": "pm25", "type": "decimal", "unit": "µg/m³", "description": "PM2.5"},
    {"name": "count", "type": "integer", "unit": None, "description": "样本数"},
    {"name": "note", "type": "string", "unit": "", "description": ""},
]


def test_every_kind_of_change_is_reported_in_a_stable_order() -> None:
    new = [
        {"name": "station", "type": "STRING", "unit": "", "description": "监测站名称"},
        {"name": "pm25", "type": "decimal", "unit": "mg/m³", "description": "PM2.5"},
        {"name": "count", "type": "decimal", "unit": "", "description": "样本数 "},
        {"name": "at", "type": "datetime", "unit": "", "description": "时间"},
    ]

    changes = schema_changes(OLD, new)

    assert [c.to_json() for c in changes] == [
        {"kind": "description_changed", "column": "station", "old": "监测站", "new": "监测站名称"},
        {"kind": "unit_changed", "column": "pm25", "old": "µg/m³", "new": "mg/m³"},
        {"kind": "type_changed", "column": "count", "old": "integer", "new": "decimal"},
        {"kind": "removed", "column": "note", "old": "string", "new": None},
        {"kind": "added", "column": "at", "old": None, "new": "datetime"},
    ]
    assert is_definition_change(changes)


def test_added_columns_and_description_edits_are_not_definition_changes() -> None:
    new = [dict(c) for c in OLD] + [{"name": "o3", "type": "decimal", "unit": "µg/m³", "description": "臭氧"}]
    new[0]["description"] = "新的说明"

    changes = schema_changes(OLD, new)

    assert [c.kind for c in changes] == ["description_changed", "added"]
    assert not is_definition_change(changes)


def test_a_rename_is_a_removal_and_an_addition_so_a_definition_change() -> None:
    new = [dict(c) for c in OLD]
    new[1]["name"] = "pm2_5"

    changes = schema_changes(OLD, new)

    assert [(c.kind, c.column) for c in changes] == [("removed", "pm25"), ("added", "pm2_5")]
    assert is_definition_change(changes)


def test_no_change_and_first_release() -> None:
    assert schema_changes(OLD, [dict(c) for c in OLD]) == []
    assert not is_definition_change([])
    assert [c.kind for c in schema_changes([], OLD)] == ["added"] * 4
    assert Change("unit_changed", "x").is_definition_change

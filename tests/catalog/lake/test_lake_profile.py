"""Profiles: column statistics checked by hand, duplicated keys, gaps and overdue against a cadence."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from lake_helpers import COLUMNS, make_row

from zhishe.catalog.lake import LakeQueryError, WriteResult, profile
from zhishe.catalog.types import ColumnSpec, ColumnType
from zhishe.core.clock import frozen

Writer = Callable[..., WriteResult]
READINGS = [
    ColumnSpec("station", ColumnType.STRING, is_key=True),
    ColumnSpec("at", ColumnType.DATETIME, is_key=True),
    ColumnSpec("on", ColumnType.DATE),
    ColumnSpec("value", ColumnType.DECIMAL),
]


def test_profile_column_statistics_match_hand_counts(uri: str, writer: Writer) -> None:
    rows = [
        make_row(1, name="a", amount=2.0, active=True),
        make_row(2, name="b", amount=None, active=True),
        make_row(3, name="a", amount=4.0, active=None),
        make_row(4, name=None, amount=float("nan"), active=False),
    ]
    writer(rows)
    result = profile(uri, columns=COLUMNS)
    json.dumps(result)  # JSON-able throughout
    assert result["row_count"] == 4 and result["version"] == 0
    name = result["columns"]["name"]
    assert (name["null_count"], name["null_rate"], name["distinct_count"]) == (1, 0.25, 2)
    assert (name["min"], name["max"]) == ("a", "b")
    assert name["top_values"] == [{"value": "a", "count": 2}, {"value": "b", "count": 1}]
    amount = result["columns"]["amount"]
    assert (amount["null_count"], amount["distinct_count"], amount["min"], amount["max"]) == (1, 3, 2.0, 4.0)
    assert "top_values" not in amount
    active = result["columns"]["active"]
    assert active["top_values"] == [{"value": True, "count": 2}, {"value": False, "count": 1}]
    day = result["columns"]["day"]
    assert (day["min"], day["max"]) == ("2024-01-02", "2024-01-05")
    at = result["columns"]["at"]
    assert (at["min"], at["max"]) == ("2024-01-01T01:00:00+00:00", "2024-01-01T04:00:00+00:00")
    assert result["columns"]["where"]["min"] is None and result["columns"]["where"]["distinct_count"] == 4
    assert result["keys"] == {"columns": ["id"], "duplicate_count": 0, "duplicate_rows": 0, "sample": []}


def test_profile_counts_duplicated_keys_with_a_sample(uri: str, writer: Writer) -> None:
    rows = [make_row(1), make_row(1), make_row(1), make_row(2), make_row(3), make_row(3)]
    writer(rows)
    keys = profile(uri, columns=COLUMNS)["keys"]
    assert (keys["duplicate_count"], keys["duplicate_rows"]) == (2, 5)
    assert keys["sample"] == [{"key": {"id": 1}, "count": 3}, {"key": {"id": 3}, "count": 2}]


def readings(*moments: datetime) -> list[dict[str, Any]]:
    return [{"station": "s1", "at": m, "on": m.date(), "value": 1.0} for m in moments]


def test_monthly_cadence_finds_gaps_and_is_not_overdue_within_the_next_month(
    uri: str, writer: Writer
) -> None:
    writer(readings(*(datetime(2024, m, 15, tzinfo=UTC) for m in (1, 2, 5, 6))), columns=READINGS)
    fresh = profile(
        uri, columns=READINGS, time_column="at", cadence="monthly", now=datetime(2024, 7, 31, 23, tzinfo=UTC)
    )["freshness"]
    assert fresh["latest_period"] == "2024-06-01T00:00:00+00:00"
    assert fresh["missing_periods"] == ["2024-03-01T00:00:00+00:00", "2024-04-01T00:00:00+00:00"]
    assert fresh["missing_count"] == 2
    assert fresh["expected_next_period"] == "2024-07-01T00:00:00+00:00"
    assert fresh["overdue"] is False
    late = profile(
        uri, columns=READINGS, time_column="at", cadence="monthly", now=datetime(2024, 8, 1, tzinfo=UTC)
    )
    assert late["freshness"]["overdue"] is True


def test_monthly_cadence_rolls_over_the_year_end(uri: str, writer: Writer) -> None:
    writer(
        readings(
            datetime(2023, 11, 2, tzinfo=UTC),
            datetime(2024, 1, 2, tzinfo=UTC),
            datetime(2024, 12, 2, tzinfo=UTC),
        ),
        columns=READINGS,
    )
    fresh = profile(
        uri,
        columns=READINGS,
        time_column="at",
        cadence="http://publications.europa.eu/resource/authority/frequency/MONTHLY",
        now=datetime(2025, 1, 20, tzinfo=UTC),
    )["freshness"]
    assert fresh["missing_count"] == 11  # December 2023, then February to November 2024
    assert fresh["missing_periods"][0] == "2023-12-01T00:00:00+00:00"
    assert fresh["expected_next_period"] == "2025-01-01T00:00:00+00:00"
    assert fresh["overdue"] is False


def test_daily_cadence_on_a_date_column_finds_gaps_and_overdue(uri: str, writer: Writer) -> None:
    days = [date(2024, 3, d) for d in (1, 2, 4, 7)]
    writer(readings(*(datetime(d.year, d.month, d.day, 9, tzinfo=UTC) for d in days)), columns=READINGS)
    fresh = profile(
        uri, columns=READINGS, time_column="on", cadence="daily", now=datetime(2024, 3, 8, 12, tzinfo=UTC)
    )["freshness"]
    assert fresh["latest_period"] == "2024-03-07"
    assert fresh["missing_periods"] == ["2024-03-03", "2024-03-05", "2024-03-06"]
    assert fresh["missing_count"] == 3
    assert fresh["expected_next_period"] == "2024-03-08"
    assert fresh["overdue"] is False
    overdue = profile(
        uri, columns=READINGS, time_column="on", cadence="DAILY", now=datetime(2024, 3, 9, tzinfo=UTC)
    )
    assert overdue["freshness"]["overdue"] is True


def test_daily_cadence_counts_days_in_the_given_time_zone(uri: str, writer: Writer) -> None:
    # 16:30 UTC is already the next day in Shanghai.
    writer(
        readings(datetime(2024, 3, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, 16, 30, tzinfo=UTC)),
        columns=READINGS,
    )
    utc = profile(
        uri, columns=READINGS, time_column="at", cadence="daily", now=datetime(2024, 3, 2, tzinfo=UTC)
    )
    assert utc["freshness"]["latest_period"] == "2024-03-01T00:00:00+00:00"
    local = profile(
        uri,
        columns=READINGS,
        time_column="at",
        cadence="daily",
        time_zone="Asia/Shanghai",
        now=datetime(2024, 3, 2, tzinfo=UTC),
    )["freshness"]
    assert local["latest_period"] == "2024-03-01T16:00:00+00:00"
    assert local["missing_count"] == 0


def test_many_missing_periods_are_capped_with_the_total(uri: str, writer: Writer) -> None:
    writer(readings(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, tzinfo=UTC)), columns=READINGS)
    fresh = profile(
        uri, columns=READINGS, time_column="at", cadence="daily", now=datetime(2025, 1, 1, tzinfo=UTC)
    )["freshness"]
    assert fresh["missing_count"] == 364
    assert len(fresh["missing_periods"]) == 100
    assert fresh["missing_periods"][0] == "2024-01-02T00:00:00+00:00"


def test_weekly_quarterly_and_annual_cadences(uri: str, writer: Writer) -> None:
    writer(readings(datetime(2024, 1, 3, tzinfo=UTC), datetime(2024, 5, 17, tzinfo=UTC)), columns=READINGS)

    def fresh(cadence: str) -> dict[str, Any]:
        return profile(
            uri, columns=READINGS, time_column="at", cadence=cadence, now=datetime(2024, 5, 20, tzinfo=UTC)
        )["freshness"]

    weekly = fresh("weekly")
    assert weekly["latest_period"] == "2024-05-13T00:00:00+00:00"  # the Monday
    assert weekly["missing_count"] == 18
    quarterly = fresh("quarterly")
    assert (quarterly["latest_period"], quarterly["missing_count"]) == ("2024-04-01T00:00:00+00:00", 0)
    annual = fresh("annual")
    assert (annual["latest_period"], annual["expected_next_period"]) == (
        "2024-01-01T00:00:00+00:00",
        "2025-01-01T00:00:00+00:00",
    )


def test_profile_uses_the_platform_clock_when_now_is_not_given(uri: str, writer: Writer) -> None:
    writer(readings(datetime(2024, 3, 1, tzinfo=UTC)), columns=READINGS)
    with frozen(datetime(2024, 3, 2, 12, tzinfo=UTC)):
        assert (
            profile(uri, columns=READINGS, time_column="at", cadence="daily")["freshness"]["overdue"] is False
        )
    with frozen(datetime(2024, 3, 3, 0, tzinfo=UTC)):
        assert (
            profile(uri, columns=READINGS, time_column="at", cadence="daily")["freshness"]["overdue"] is True
        )


def test_irregular_cadence_reports_only_the_latest_value(uri: str, writer: Writer) -> None:
    writer(readings(datetime(2024, 3, 1, tzinfo=UTC)), columns=READINGS)
    fresh = profile(
        uri,
        columns=READINGS,
        time_column="at",
        cadence="http://publications.europa.eu/resource/authority/frequency/IRREG",
    )["freshness"]
    assert fresh["periodic"] is False and fresh["latest_value"] == "2024-03-01T00:00:00+00:00"
    assert "overdue" not in fresh


def test_profile_refuses_unknown_cadences_columns_and_naive_now(uri: str, writer: Writer) -> None:
    writer(readings(datetime(2024, 3, 1, tzinfo=UTC)), columns=READINGS)
    with pytest.raises(LakeQueryError, match="fortnightly"):
        profile(uri, columns=READINGS, time_column="at", cadence="fortnightly")
    with pytest.raises(LakeQueryError, match="'nope'"):
        profile(uri, columns=READINGS, time_column="nope", cadence="daily")
    with pytest.raises(LakeQueryError, match="dates or datetimes"):
        profile(uri, columns=READINGS, time_column="value", cadence="daily")
    with pytest.raises(LakeQueryError, match="hourly"):
        profile(uri, columns=READINGS, time_column="on", cadence="hourly")
    with pytest.raises(LakeQueryError, match="aware"):
        profile(uri, columns=READINGS, now=datetime(2024, 1, 1))

"""Every cadence the catalog accepts can be profiled; the non-periodic ones have no gaps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from zhishe.catalog.lake import profile, write_version
from zhishe.catalog.types import ColumnSpec, ColumnType

COLUMNS = [ColumnSpec("day", ColumnType.DATE), ColumnSpec("value", ColumnType.DECIMAL)]


@pytest.mark.parametrize("cadence", ["irregular", "never", "continuous", "daily"])
def test_a_time_series_of_any_accepted_cadence_is_profiled(tmp_path: Path, cadence: str) -> None:
    from datetime import date

    rows = pa.table({"day": pa.array([date(2026, 1, 1), date(2026, 1, 3)], pa.date32()), "value": [1.0, 2.0]})
    uri = str(tmp_path / "t")
    write_version(uri, rows, columns=COLUMNS, mode="append", row_id_start=0, metadata={})
    result = profile(
        uri, columns=COLUMNS, time_column="day", cadence=cadence, now=datetime(2026, 2, 1, tzinfo=UTC)
    )
    freshness = result["freshness"]
    assert freshness["periodic"] is (cadence == "daily")
    if cadence == "daily":
        assert freshness["missing_periods"] == ["2026-01-02"]

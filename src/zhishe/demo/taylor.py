"""The one real dataset of the demo: half-hourly electricity demand in England and Wales, summer 2000.

The values are read from ``data/taylor.csv`` shipped with this package; ``data/SOURCE.md`` says
where they come from and how the file was derived.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files

from zhishe.catalog.types import Classification, ColumnSpec, ColumnType
from zhishe.demo._util import make_table
from zhishe.demo.model import DemoDataset

__all__ = ["TAYLOR_SOURCE", "build_taylor", "read_taylor"]

TAYLOR_SOURCE = (
    "Taylor, J.W. (2003) Short-term electricity demand forecasting using double seasonal exponential "
    "smoothing. Journal of the Operational Research Society, 54, 799–805. Data kindly provided by "
    "James W. Taylor and published as the `taylor` data set of the R package forecast "
    "(Hyndman et al., licence GPL-3); redistributed in the Python package pmdarima 2.1.1 "
    "(pmdarima/datasets/taylor.py, licence MIT). 4,032 half-hourly values in megawatts, "
    "Monday 5 June 2000 to Sunday 27 August 2000, copied unchanged; timestamps are the start "
    "of each half hour in British Summer Time (UTC+01:00)."
)


def read_taylor() -> list[tuple[datetime, float]]:
    """The 4,032 (period start in UTC, demand in MW) pairs of ``data/taylor.csv``."""
    text = files("zhishe.demo").joinpath("data/taylor.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    return [
        (datetime.fromisoformat(row["period_start"]).astimezone(UTC), float(row["demand_mw"]))
        for row in reader
    ]


def build_taylor() -> DemoDataset:
    """The England and Wales demand series as a dataset owned by the operator."""
    values = read_taylor()
    columns = [
        ColumnSpec(
            "period_start",
            ColumnType.DATETIME,
            description="Start of the half hour (British Summer Time in the source file)",
            is_key=True,
            classification=Classification.PUBLIC,
        ),
        ColumnSpec(
            "demand_mw",
            ColumnType.DECIMAL,
            unit="MW",
            description="Electricity demand in England and Wales during the half hour",
            classification=Classification.PUBLIC,
        ),
    ]
    rows = make_table(columns, {"period_start": [t for t, _ in values], "demand_mw": [v for _, v in values]})
    return DemoDataset(
        slug="electricity-demand-england-wales",
        owner="operator",
        title_zh="英格兰和威尔士半小时电力需求（2000年夏）",
        title_en="Half-hourly electricity demand, England and Wales (summer 2000)",
        description_zh=(
            "真实公开数据：2000年6月5日（周一）至8月27日（周日）英格兰和威尔士每半小时的电力需求（兆瓦），"
            "共4032个值，具有日周期和周周期的双重季节性。运营方用于演示负荷预测和回测。"
        ),
        description_en=(
            "Real public data: electricity demand (MW) in England and Wales for each half hour from "
            "Monday 5 June to Sunday 27 August 2000, 4,032 values with daily and weekly seasonality. "
            "The operator uses it to demonstrate load forecasting and backtests."
        ),
        theme="energy",
        keywords=[
            "电力需求",
            "负荷预测",
            "双季节性",
            "electricity demand",
            "load forecasting",
            "time series",
        ],
        cadence="never",
        sharing_class="unconditional",
        licence="GPL-3.0-only",
        contact="operator.steward@demo.zhishe.example",
        temporal_coverage=(date(2000, 6, 5), date(2000, 8, 27)),
        spatial_coverage="英格兰和威尔士 / England and Wales, United Kingdom",
        time_column="period_start",
        source=TAYLOR_SOURCE,
        columns=columns,
        rows=rows,
        csv_utc_offset=timedelta(hours=1),
    )

"""Filters on string columns keep working after an upsert (delta-rs MERGE writes string_view files)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from zhishe.catalog import lake
from zhishe.catalog.types import ColumnSpec, ColumnType

COLUMNS = [
    ColumnSpec("station", ColumnType.STRING, is_key=True),
    ColumnSpec("day", ColumnType.DATE, is_key=True),
    ColumnSpec("pm25", ColumnType.DECIMAL),
]


def test_string_filters_after_an_upsert(tmp_path):
    uri = str(tmp_path / "t")
    first = pa.table(
        {
            "station": ["东四", "东四", "天坛"],
            "day": [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 1)],
            "pm25": [1.0, 2.0, 3.0],
        }
    )
    written = lake.write_version(uri, first, columns=COLUMNS, mode="append", row_id_start=0, metadata={})
    change = pa.table({"station": ["东四"], "day": [date(2026, 1, 2)], "pm25": [9.0]})
    lake.write_version(
        uri, change, columns=COLUMNS, mode="upsert", row_id_start=written.next_row_id, metadata={}
    )
    cases = {
        "=": ({"column": "station", "op": "=", "value": "东四"}, [1.0, 9.0]),
        "!=": ({"column": "station", "op": "!=", "value": "东四"}, [3.0]),
        "in": ({"column": "station", "op": "in", "value": ["天坛"]}, [3.0]),
        "starts_with": ({"column": "station", "op": "starts_with", "value": "东"}, [1.0, 9.0]),
        "and": (
            {
                "and": [
                    {"column": "station", "op": "=", "value": "东四"},
                    {"column": "pm25", "op": ">", "value": 5},
                ]
            },
            [9.0],
        ),
    }
    for name, (where, expected) in cases.items():
        page = lake.read(uri, columns=COLUMNS, where=lake.parse_filter(where), order=[("pm25", "asc")])
        assert page.rows.column("pm25").to_pylist() == expected, name
        assert page.rows.schema.field("station").type == pa.string()
    counted = lake.aggregate(
        uri,
        columns=COLUMNS,
        group_by=["station"],
        measures=[("count", None)],
        where=lake.parse_filter({"column": "station", "op": "=", "value": "天坛"}),
    )
    assert counted.to_pylist() == [{"station": "天坛", "count": 1}]
    out = tmp_path / "out.csv"
    assert lake.export(uri, columns=COLUMNS, where=lake.parse_filter(cases["="][0]), fmt="csv", dest=out) == 2

"""Timing check of the dataset store on 1,000,000 rows × 12 columns (not collected by pytest).

Run: ``.venv/bin/python tests/catalog/lake/perf_check.py [rows]``. Prints each operation's
best-of-N wall time beside a raw DuckDB baseline over the same Arrow dataset, measured in the
same run. Figures, not assertions.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from zhishe.catalog.lake import aggregate, count, export, parse_filter, profile, read, write_version
from zhishe.catalog.lake._table import dataset, open_table
from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema

COLUMNS = [
    ColumnSpec("reading", ColumnType.INTEGER, is_key=True),
    ColumnSpec("ts", ColumnType.DATETIME),
    ColumnSpec("day", ColumnType.DATE),
    ColumnSpec("district", ColumnType.STRING),
    ColumnSpec("category", ColumnType.STRING),
    ColumnSpec("station", ColumnType.INTEGER),
    ColumnSpec("ok", ColumnType.BOOLEAN),
    ColumnSpec("location", ColumnType.POINT),
    ColumnSpec("m1", ColumnType.DECIMAL),
    ColumnSpec("m2", ColumnType.DECIMAL),
    ColumnSpec("m3", ColumnType.DECIMAL),
    ColumnSpec("m4", ColumnType.DECIMAL),
]


def generate(rows: int) -> pa.Table:
    """`rows` readings over one year, in time order, typed as `arrow_schema(COLUMNS)`."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SELECT setseed(0.42)").fetchall()
    table = con.sql(
        f"""
        SELECT range AS reading,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((range * (31536000000000 // {rows}))::BIGINT) AS ts,
               CAST(TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((range * (31536000000000 // {rows}))::BIGINT) AS DATE) AS day,
               '区' || (random() * 20)::INT AS district,
               'c' || (random() * 50)::INT AS category,
               (random() * 500)::BIGINT AS station,
               random() > 0.1 AS ok,
               {{'lat': 31.0 + random(), 'lon': 121.0 + random()}} AS location,
               random() * 100 AS m1, random() * 100 AS m2, random() * 100 AS m3, random() * 100 AS m4
        FROM range({rows})
        """
    ).to_arrow_table()
    return table.cast(arrow_schema(COLUMNS))


def best(
    label: str, action: Callable[[], Any], *, repeat: int = 5, baseline: Callable[[], Any] | None = None
) -> Any:
    """Run `action` `repeat` times and print the best time (and the baseline's)."""
    result: Any = None
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        timings.append(time.perf_counter() - start)
    line = f"{label:<58} {min(timings) * 1000:9.1f} ms"
    if baseline is not None:
        base = []
        for _ in range(repeat):
            start = time.perf_counter()
            baseline()
            base.append(time.perf_counter() - start)
        line += f"   (raw DuckDB baseline {min(base) * 1000:8.1f} ms)"
    print(line, flush=True)
    return result


def raw(uri: str, sql: str) -> Callable[[], Any]:
    """A baseline: the same question asked of raw DuckDB over the table's Arrow dataset."""

    def run() -> Any:
        con = duckdb.connect()
        con.register("t", dataset(open_table(uri)))
        return con.sql(sql).to_arrow_table()

    return run


def walk(uri: str, pages: int, **kwargs: Any) -> tuple[float, float]:
    """Walk `pages` pages by token; (time of the last page, total time) in ms."""
    token = None
    start = time.perf_counter()
    last = 0.0
    for _ in range(pages):
        page_start = time.perf_counter()
        page = read(uri, columns=COLUMNS, after=token, **kwargs)
        last = time.perf_counter() - page_start
        token = page.next
    return last * 1000, (time.perf_counter() - start) * 1000


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        uri = f"{directory}/readings"
        started = time.perf_counter()
        data = generate(rows)
        print(
            f"generated {data.num_rows:,} rows × {data.num_columns} columns in {time.perf_counter() - started:.2f} s"
        )
        start = time.perf_counter()
        result = write_version(
            uri, data, columns=COLUMNS, mode="append", row_id_start=0, metadata={"job": "perf"}
        )
        print(f"{'write_version append (one commit)':<58} {(time.perf_counter() - start) * 1000:9.1f} ms")
        small = data.slice(0, 1000).set_column(0, "reading", pa.array(range(rows, rows + 1000), pa.int64()))
        start = time.perf_counter()
        write_version(
            uri, small, columns=COLUMNS, mode="append", row_id_start=result.next_row_id, metadata={}
        )
        print(
            f"{'write_version append 1,000 rows as a new version':<58} {(time.perf_counter() - start) * 1000:9.1f} ms"
        )

        best(
            "read page 1 (row-id order, 50 rows)",
            lambda: read(uri, columns=COLUMNS),
            baseline=raw(uri, "SELECT * FROM t ORDER BY _row_id LIMIT 50"),
        )
        best(
            "read page 1 ordered by ts desc",
            lambda: read(uri, columns=COLUMNS, order=[("ts", "desc")]),
            baseline=raw(uri, "SELECT * FROM t ORDER BY ts DESC, _row_id LIMIT 50"),
        )
        best(
            "read page 1 with total (filter district, m1 > 90)",
            lambda: read(
                uri,
                columns=COLUMNS,
                where=parse_filter(
                    {
                        "and": [
                            {"column": "district", "op": "=", "value": "区3"},
                            {"column": "m1", "op": ">", "value": 90},
                        ]
                    }
                ),
                with_total=True,
            ),
            baseline=raw(uri, "SELECT * FROM t WHERE district = '区3' AND m1 > 90 ORDER BY _row_id LIMIT 50"),
        )
        for label, kwargs, offset_sql in [
            ("row-id order", {}, "SELECT * FROM t ORDER BY _row_id LIMIT 50 OFFSET 4950"),
            (
                "ts order",
                {"order": [("ts", "asc")]},
                "SELECT * FROM t ORDER BY ts, _row_id LIMIT 50 OFFSET 4950",
            ),
            (
                "category order",
                {"order": [("category", "asc")]},
                "SELECT * FROM t ORDER BY category, _row_id LIMIT 50 OFFSET 4950",
            ),
        ]:
            last, total = walk(uri, 100, **kwargs)
            base = best(f"  (baseline: page 100 by OFFSET, {label})", raw(uri, offset_sql), repeat=3)
            del base
            print(
                f"{'read page 100 by keyset, ' + label:<58} {last:9.1f} ms   (walk of 100 pages {total:8.1f} ms)"
            )
        best(
            "count with filter",
            lambda: count(
                uri, columns=COLUMNS, where=parse_filter({"column": "ok", "op": "=", "value": False})
            ),
        )
        best(
            "aggregate: group by district × month, count/sum/avg",
            lambda: aggregate(
                uri,
                columns=COLUMNS,
                group_by=["district"],
                measures=[("count", None), ("sum", "m1"), ("avg", "m2")],
                time_bucket=("ts", "month"),
            ),
            baseline=raw(
                uri,
                "SELECT date_trunc('month', ts) AS ts, district, count(*), sum(m1), avg(m2) FROM t GROUP BY ALL",
            ),
        )
        best(
            "aggregate: group by district, count/sum",
            lambda: aggregate(
                uri, columns=COLUMNS, group_by=["district"], measures=[("count", None), ("sum", "m1")]
            ),
            baseline=raw(uri, "SELECT district, count(*), sum(m1) FROM t GROUP BY district"),
        )
        best(
            "profile (12 columns, key duplicates, daily cadence)",
            lambda: profile(
                uri, columns=COLUMNS, time_column="ts", cadence="daily", now=datetime(2025, 1, 2, tzinfo=UTC)
            ),
            repeat=3,
        )
        best(
            "export ndjson (all rows)",
            lambda: export(uri, columns=COLUMNS, fmt="ndjson", dest=f"{directory}/out.ndjson"),
            repeat=1,
        )
        best(
            "export csv (all rows)",
            lambda: export(uri, columns=COLUMNS, fmt="csv", dest=f"{directory}/out.csv"),
            repeat=1,
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

"""Deterministic rows for the open-data query-engine tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

COLUMNS = {
    "ts": "datetime",
    "district": "string",
    "category": "string",
    "m1": "decimal",
    "n": "integer",
    "ok": "boolean",
    "day": "date",
    "loc": "point",
}
ROWS = 2_000


def make_table(rows: int = ROWS) -> pa.Table:
    """Deterministic rows in scrambled time order, with some nulls and ties."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    order = [(i * 7919) % rows for i in range(rows)]
    ts = [None if i % 97 == 0 else start + timedelta(minutes=(i // 3) * 5) for i in order]
    return pa.table(
        {
            "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            "district": [["东城", "西城", "朝阳", "海淀"][i % 4] for i in order],
            "category": [f"cat{i % 5}" for i in order],
            "m1": [None if i % 50 == 1 else (i * 37) % 100 + 0.5 for i in order],
            "n": pa.array([i % 7 for i in order], type=pa.int64()),
            "ok": [i % 3 == 0 for i in order],
            "day": pa.array([(start + timedelta(days=i % 30)).date() for i in order], type=pa.date32()),
            "loc": pa.array(
                [{"lat": 39.9 + (i % 10) * 0.01, "lon": 116.4 + (i % 10) * 0.01} for i in order],
                type=pa.struct([("lat", pa.float64()), ("lon", pa.float64())]),
            ),
        }
    )

"""Property: keyset paging over random data and random orders returns exactly the full sort, once."""

from __future__ import annotations

import functools
import math
import tempfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhishe.catalog.lake import _table, parse_filter, read, write_version
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType, arrow_schema

COLUMNS = [
    ColumnSpec("n", ColumnType.INTEGER),
    ColumnSpec("s", ColumnType.STRING),
    ColumnSpec("f", ColumnType.DECIMAL),
    ColumnSpec("b", ColumnType.BOOLEAN),
    ColumnSpec("d", ColumnType.DATE),
    ColumnSpec("t", ColumnType.DATETIME),
]
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


row = st.fixed_dictionaries(
    {
        # Few distinct values, so ties (and ties of ties) are common.
        "n": maybe(st.integers(-2, 2)),
        "s": maybe(st.sampled_from(["", "a", "A", "b", "%", "_", "é", "名", "a b"])),
        "f": maybe(st.sampled_from([0.0, -0.0, 1.5, -1.5, math.inf, -math.inf, math.nan])),
        "b": maybe(st.booleans()),
        "d": maybe(st.sampled_from([date(2024, 1, 1), date(2023, 12, 31), date(2024, 2, 29)])),
        "t": maybe(st.sampled_from([BASE, BASE + timedelta(microseconds=1), BASE - timedelta(days=1)])),
    }
)
orders = st.lists(
    st.tuples(st.sampled_from([c.name for c in COLUMNS]), st.sampled_from(["asc", "desc"])),
    max_size=3,
    unique_by=lambda item: item[0],
)


def rank(value: Any) -> tuple[Any, ...]:
    """A non-null value's position in DuckDB's order (NaN above every other number)."""
    if isinstance(value, float) and math.isnan(value):
        return (1,)
    return (0, value)


def compare(left: dict[str, Any], right: dict[str, Any], order: list[tuple[str, str]]) -> int:
    """The reference order: NULLS LAST ascending, NULLS FIRST descending, then the row id."""
    for name, direction in order:
        a, b = left[name], right[name]
        if a is None and b is None:
            continue
        if a is None or b is None:
            result = 1 if a is None else -1  # null is the largest value
        elif rank(a) == rank(b):
            continue
        else:
            result = -1 if rank(a) < rank(b) else 1
        return -result if direction == "desc" else result
    return -1 if left[ROW_ID] < right[ROW_ID] else (1 if left[ROW_ID] > right[ROW_ID] else 0)


@settings(
    max_examples=80,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    batches=st.lists(st.lists(row, max_size=15), min_size=1, max_size=3),
    order=orders,
    limit=st.integers(1, 7),
    minimum=st.none() | st.integers(-2, 2),
    row_group_rows=st.sampled_from([2, 3, 64 * 1024]),
)
def test_keyset_paging_never_skips_or_repeats_a_row(
    batches: list[list[dict[str, Any]]],
    order: list[tuple[str, str]],
    limit: int,
    minimum: int | None,
    row_group_rows: int,
) -> None:
    # Tiny row groups make the reads take their statistics-bounded shortcut (see _bounds).
    default_rows = _table.ROW_GROUP_ROWS
    _table.ROW_GROUP_ROWS = row_group_rows
    try:
        check_paging(batches, order, limit, minimum)
    finally:
        _table.ROW_GROUP_ROWS = default_rows


def check_paging(
    batches: list[list[dict[str, Any]]], order: list[tuple[str, str]], limit: int, minimum: int | None
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        uri = f"{directory}/t"
        everything: list[dict[str, Any]] = []
        next_id = 1
        for batch in batches:
            write_version(
                uri,
                pa.Table.from_pylist(batch, schema=arrow_schema(COLUMNS)),
                columns=COLUMNS,
                mode="append",
                row_id_start=next_id,
                metadata={},
            )
            everything += [{**r, ROW_ID: next_id + i} for i, r in enumerate(batch)]
            next_id += len(batch)
        where = None
        if minimum is not None:
            where = parse_filter({"column": "n", "op": ">=", "value": minimum})
            everything = [r for r in everything if r["n"] is not None and r["n"] >= minimum]
        expected = [
            r[ROW_ID] for r in sorted(everything, key=functools.cmp_to_key(lambda a, b: compare(a, b, order)))
        ]

        seen: list[int] = []
        token: str | None = None
        for _ in range(len(expected) + 2):
            page = read(
                uri,
                columns=COLUMNS,
                where=where,
                order=order,  # type: ignore[arg-type]
                after=token,
                limit=limit,
                select=[ROW_ID],
            )
            assert page.rows.num_rows <= limit
            seen += page.rows.column(ROW_ID).to_pylist()
            token = page.next
            if token is None:
                break
        assert token is None, "paging did not end"
        assert seen == expected, f"{order=} {limit=} {minimum=} {batches=}"

"""Pages read by position from the rows file are exactly the pages DuckDB returns: the same rows,
types, JSON and next tokens, on a release with ties and nulls in its order key, across batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from odq_data import COLUMNS, ROWS, make_table

from zhishe.opendata import rowfile
from zhishe.opendata.jsonrows import json_rows
from zhishe.opendata.soql import CompiledQuery, Page, compile_query
from zhishe.opendata.store import ReleaseStore

ZONE = "Asia/Shanghai"
KEYS = {"data": "ties"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseStore]:
    """The test rows (nulls first, three rows per time) in batches of 64, so pages cross batches."""
    patch = pytest.MonkeyPatch()
    patch.setattr(rowfile, "BATCH_ROWS", 64)
    found = ReleaseStore(tmp_path_factory.mktemp("ties"), timezone=ZONE)
    found.build("ties", make_table(), order_by=["ts"])
    patch.undo()
    yield found
    found.close()


def both(store: ReleaseStore, params: dict[str, str], after: str | None = None) -> tuple[CompiledQuery, Page]:
    """Compile `params`, run the page both ways, check they agree, and return the page."""
    compiled = compile_query(params, COLUMNS, after=after, sort_key=["ts"], timezone=ZONE)
    assert compiled.row_range is not None, params
    general = store.execute(KEYS, compiled.sql, compiled.params, timeout=5, max_rows=compiled.fetch_rows)
    rows = compiled.row_range
    by_position = store.read_rows("ties", first=rows.first, count=rows.count, columns=rows.columns)
    assert by_position is not None
    assert by_position.schema == general.schema
    assert by_position.to_pylist() == general.to_pylist()
    page, other = compiled.page(by_position), compiled.page(general)
    assert (page.next, page.next_offset) == (other.next, other.next_offset)
    assert json_rows(page.rows, ZoneInfo(ZONE)) == json_rows(other.rows, ZoneInfo(ZONE))
    return compiled, page


def everything(store: ReleaseStore) -> list[dict[str, Any]]:
    every = store.execute(KEYS, "SELECT * EXCLUDE (_row) FROM data ORDER BY _row", timeout=5, max_rows=ROWS)
    return list(every.to_pylist())


def test_walking_a_release_by_tokens_gives_every_row_once_in_order(store: ReleaseStore) -> None:
    assert rowfile.RowFile.open(store.rows_path("ties")).batch_rows == 64
    params = {"$order": "ts", "$limit": "97"}  # 2,000 = 20 pages of 97 and a last one of 60
    seen: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        _, page = both(store, params, after=token)
        seen += page.rows.to_pylist()
        pages += 1
        if page.next is None:
            break
        token = page.next
    assert pages == 21 and page.rows.num_rows == ROWS - 20 * 97
    assert seen == everything(store)
    assert seen[0]["ts"] is None  # nulls first, ties kept in _row order


def test_offsets_first_middle_last_partial_and_past_the_end(store: ReleaseStore) -> None:
    every = everything(store)
    for offset, count in [(0, 50), (1, 50), (63, 50), (1_000, 50), (1_990, 10), (1_999, 1), (2_000, 0)]:
        _, page = both(store, {"$limit": "50", "$offset": str(offset)})
        assert page.rows.to_pylist() == every[offset : offset + 50] and page.rows.num_rows == count
    _, past = both(store, {"$limit": "50", "$offset": "2500"})
    assert past.rows.num_rows == 0 and past.next is None and past.next_offset is None


def test_a_select_of_some_columns_with_aliases_and_no_order(store: ReleaseStore) -> None:
    compiled, page = both(store, {"$select": "district AS d, loc, ts, m1 AS ts2", "$limit": "70"})
    assert page.rows.column_names == ["d", "loc", "ts", "ts2"]
    _, following = both(store, {"$select": "district AS d, loc, ts, m1 AS ts2", "$limit": "70"}, page.next)
    assert following.rows.column_names == ["d", "loc", "ts", "ts2"]
    assert compiled.columns == {"d": "text", "loc": "point", "ts": "datetime", "ts2": "number"}


def test_tokens_of_either_way_work_in_the_other(store: ReleaseStore) -> None:
    params = {"$order": "ts ASC", "$limit": "33"}
    compiled, page = both(store, params)
    general = store.execute(KEYS, compiled.sql, compiled.params, timeout=5, max_rows=compiled.fetch_rows)
    assert compiled.page(general).next == page.next is not None
    nxt = compile_query(params, COLUMNS, after=page.next, sort_key=["ts"], timezone=ZONE)
    assert nxt.row_range is not None and nxt.row_range.first == 33


@pytest.mark.parametrize(
    "params",
    [
        {"$order": "ts DESC"},  # ties would come back in _row order, not reversed: not a range
        {"$order": "district"},
        {"$where": "n = 1"},
        {"district": "东城"},
        {"$q": "cat1"},
        {"$select": "lower(district) AS d"},
        {"$select": "district, count(*) AS n", "$group": "district"},
        {"$select": "m1 + 1 AS m"},
    ],
)
def test_pages_that_are_not_a_range_of_positions_are_left_to_duckdb(params: dict[str, str]) -> None:
    assert compile_query(params, COLUMNS, sort_key=["ts"], timezone=ZONE).row_range is None


def test_a_release_without_a_rows_file_is_read_by_duckdb(tmp_path: Path) -> None:
    older = ReleaseStore(tmp_path, timezone=ZONE)
    older.build("old", make_table(50), order_by=["ts"])
    older.rows_path("old").unlink()  # as a release built before rows files existed
    assert older.read_rows("old", first=0, count=10, columns=[("ts", "ts")]) is None


def test_an_empty_release_reads_as_an_empty_page_with_the_same_columns(tmp_path: Path) -> None:
    empty = ReleaseStore(tmp_path, timezone=ZONE)
    empty.build("none", make_table(0), order_by=["ts"])
    compiled = compile_query({"$order": "ts"}, COLUMNS, sort_key=["ts"], timezone=ZONE)
    assert compiled.row_range is not None
    rows = compiled.row_range
    by_position = empty.read_rows("none", first=rows.first, count=rows.count, columns=rows.columns)
    general = empty.execute({"data": "none"}, compiled.sql, compiled.params, timeout=5, max_rows=10)
    assert by_position is not None and by_position.num_rows == general.num_rows == 0
    assert by_position.schema == general.schema


def test_rows_files_keep_order_and_refuse_rows_not_numbered_in_order(tmp_path: Path) -> None:
    table = make_table(100).append_column("_row", pa.array(range(100), type=pa.int64()))
    assert rowfile.write(tmp_path / "ok.arrow", table.to_reader(max_chunksize=30), batch_rows=7) == 100
    opened = rowfile.RowFile.open(tmp_path / "ok.arrow")
    assert (opened.rows, opened.batch_rows, opened.schema.names) == (100, 7, list(COLUMNS))
    for first, count in [(0, 7), (5, 9), (13, 40), (95, 10), (-3, 5), (100, 5)]:
        got = opened.read(first, count, [("when", "ts"), ("_row", "_row"), ("n", "n")])
        start, end = max(first, 0), min(first + count, 100)
        assert got.column_names == ["when", "_row", "n"]
        assert got.column("_row").to_pylist() == list(range(start, max(start, end)))
        assert got.column("n").to_pylist() == table.column("n").to_pylist()[start:end]
    shuffled = table.set_column(
        table.schema.get_field_index("_row"), "_row", pa.array([1, 0, *range(2, 100)])
    )
    with pytest.raises(ValueError, match="not numbered in order"):
        rowfile.write(tmp_path / "bad.arrow", shuffled.to_reader(), batch_rows=7)

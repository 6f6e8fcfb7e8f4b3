"""ReleaseStore: sorted, numbered, atomic builds; locked read-only queries; the time limit."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from odq_data import ROWS, make_table

from zhishe.core.errors import Invalid, NotFound
from zhishe.opendata.store import QueryFailed, QueryTimeout, ReleaseStore

KEYS = {"data": "rel1"}


def test_build_sorts_by_the_order_key_and_numbers_rows(release_store: ReleaseStore) -> None:
    table = release_store.execute(KEYS, "SELECT ts, _row FROM data ORDER BY _row", timeout=5, max_rows=ROWS)
    assert table.column("_row").to_pylist() == list(range(ROWS))
    ts = table.column("ts").to_pylist()
    nulls = sum(1 for t in ts if t is None)
    assert ts[:nulls] == [None] * nulls  # nulls first
    assert ts[nulls:] == sorted(ts[nulls:])
    assert release_store.row_count("rel1") == ROWS
    unordered = release_store.execute(KEYS, "SELECT _row FROM data", timeout=5, max_rows=ROWS)
    assert unordered.column("_row").to_pylist() == list(range(ROWS))  # file order is _row order


def test_schema_hides_the_row_number_and_keeps_points_as_structs(release_store: ReleaseStore) -> None:
    schema = release_store.schema("rel1")
    assert "_row" not in schema.names
    assert pa.types.is_struct(schema.field("loc").type)


def test_build_from_parquet_is_atomic_and_replaceable(tmp_path: Path) -> None:
    store = ReleaseStore(tmp_path / "s")
    path = tmp_path / "x.parquet"
    pq.write_table(make_table(100), path)
    info = store.build("p1", path, order_by=["n", "ts"])
    assert info.rows == 100 and "_row" not in info.columns and info.order_by == ["n", "ts"]
    assert store.exists("p1")
    assert info.rows_file_bytes == store.rows_path("p1").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["p1.arrow", "p1.duckdb"]
    with pytest.raises(Invalid, match="order_by column nope"):
        store.build("p2", path, order_by=["nope"])
    assert not store.exists("p2")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["p1.arrow", "p1.duckdb"]  # no half file
    first = store.read_rows("p1", first=0, count=100, columns=[("n", "n")])
    assert first is not None and first.num_rows == 100
    store.build("p1", make_table(10), order_by=["ts"])
    assert store.row_count("p1") == 10
    again = store.read_rows("p1", first=0, count=100, columns=[("n", "n")])
    assert again is not None and again.num_rows == 10  # the replaced rows file, not the old one
    store.remove("p1")
    assert not store.exists("p1")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == []
    assert store.read_rows("p1", first=0, count=1, columns=[("n", "n")]) is None
    with pytest.raises(NotFound):
        store.row_count("p1")


def test_keys_that_are_not_plain_names_are_refused(release_store: ReleaseStore) -> None:
    for key in ["../etc", "a/b", "", "x'y"]:
        with pytest.raises(Invalid):
            release_store.path(key)


def test_views_take_the_names_the_caller_gives(release_store: ReleaseStore) -> None:
    keys = {"air-quality": "rel1", "air-quality@1": "rel1"}
    sql = 'SELECT count(*) AS a, (SELECT count(*) FROM "air-quality@1") AS b FROM "air-quality"'
    row = release_store.execute(keys, sql, timeout=5, max_rows=1).to_pylist()[0]
    assert row == {"a": ROWS, "b": ROWS}
    hidden = release_store.execute(
        keys, 'SELECT * FROM "air-quality"', timeout=5, max_rows=1, include_row=False
    )
    assert "_row" not in hidden.column_names


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/tmp/*.parquet')",
        "COPY (SELECT 1) TO '/tmp/zhishe-odq-leak.csv'",
        "SET enable_external_access = true",
        "SET memory_limit = '100GB'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "ATTACH '/tmp/zhishe-odq-evil.db' AS evil",
        "CREATE TABLE r0.main.t AS SELECT 1",
    ],
)
def test_connections_reach_no_file_extension_or_setting(release_store: ReleaseStore, sql: str) -> None:
    with pytest.raises(QueryFailed):
        release_store.execute(KEYS, sql, timeout=5, max_rows=1)
    assert not Path("/tmp/zhishe-odq-leak.csv").exists()


def test_a_query_past_its_time_limit_is_stopped_and_the_next_one_works(release_store: ReleaseStore) -> None:
    with pytest.raises(QueryTimeout, match=r"time limit of 0\.2 seconds") as caught:
        release_store.execute(KEYS, "SELECT count(*) FROM range(10000000000) a", timeout=0.2, max_rows=1)
    assert caught.value.status_code == 408 and caught.value.type == "timeout"
    assert (
        release_store.execute(KEYS, "SELECT count(*) AS c FROM data", timeout=5, max_rows=1)
        .column(0)[0]
        .as_py()
        == ROWS
    )


def test_max_rows_stops_reading_and_streams_come_in_batches(release_store: ReleaseStore) -> None:
    assert release_store.execute(KEYS, "SELECT * FROM data", timeout=5, max_rows=7).num_rows == 7
    batches = list(release_store.stream(KEYS, "SELECT * FROM data", batch_rows=500))
    assert sum(b.num_rows for b in batches) == ROWS


def test_parameters_and_runtime_errors(release_store: ReleaseStore) -> None:
    got = release_store.execute(KEYS, "SELECT count(*) FROM data WHERE n = ?", [3], timeout=5, max_rows=1)
    assert got.column(0)[0].as_py() > 0
    with pytest.raises(QueryFailed, match="the query failed"):
        release_store.execute(KEYS, "SELECT CAST('x' AS INTEGER)", timeout=5, max_rows=1)


def test_concurrent_queries_share_the_cached_connection(release_store: ReleaseStore) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                t = release_store.execute(KEYS, "SELECT count(*) FROM data", timeout=5, max_rows=1)
                assert t.column(0)[0].as_py() == ROWS
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

"""Writing versions: append, replace, upsert, row ids, commit metadata, schema changes, compaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from lake_helpers import COLUMNS, NO_KEY_COLUMNS, make_row, table_of

from zhishe.catalog.lake import (
    LakeDataError,
    LakeError,
    LakeNotFound,
    LakeSchemaError,
    WriteResult,
    compact,
    count,
    next_row_id,
    read,
    table_exists,
    versions,
    write_version,
)
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType

Writer = Callable[..., WriteResult]


def all_rows(
    uri: str, version: int | None = None, columns: list[ColumnSpec] = COLUMNS
) -> list[dict[str, Any]]:
    page = read(
        uri, columns=columns, version=version, select=[ROW_ID, *(c.name for c in columns)], limit=10_000
    )
    return page.rows.to_pylist()


def test_first_append_creates_the_table_as_version_zero(uri: str, writer: Writer) -> None:
    assert not table_exists(uri)
    result = writer([make_row(i) for i in range(3)])
    assert table_exists(uri)
    assert (result.version, result.rows_inserted, result.row_count, result.committed) == (0, 3, 3, True)
    assert result.next_row_id == 4


def test_append_assigns_row_ids_in_order_from_row_id_start(uri: str) -> None:
    write_version(
        uri,
        table_of([make_row(i) for i in range(3)]),
        columns=COLUMNS,
        mode="append",
        row_id_start=100,
        metadata={},
    )
    result = write_version(
        uri, table_of([make_row(9)]), columns=COLUMNS, mode="append", row_id_start=103, metadata={}
    )
    assert result.version == 1 and result.row_count == 4
    assert [(r[ROW_ID], r["id"]) for r in all_rows(uri)] == [(100, 0), (101, 1), (102, 2), (103, 9)]


def test_row_ids_already_in_the_table_are_refused(uri: str) -> None:
    write_version(uri, table_of([make_row(1)]), columns=COLUMNS, mode="append", row_id_start=10, metadata={})
    for mode in ("append", "replace", "upsert"):
        with pytest.raises(LakeDataError, match=r"row ids 8\.\.10 are already used by 1 row"):
            write_version(
                uri,
                table_of([make_row(i) for i in (2, 3, 4)]),
                columns=COLUMNS,
                mode=mode,  # type: ignore[arg-type]
                row_id_start=8,
                metadata={},
            )
    assert next_row_id(uri) == 11


def test_row_ids_below_the_largest_are_accepted_when_unused(uri: str) -> None:
    # Two writers allocated 100.. and 200..; the second committed first.
    write_version(uri, table_of([make_row(1)]), columns=COLUMNS, mode="append", row_id_start=200, metadata={})
    write_version(uri, table_of([make_row(2)]), columns=COLUMNS, mode="append", row_id_start=100, metadata={})
    assert sorted(r[ROW_ID] for r in all_rows(uri)) == [100, 200]


def test_replace_overwrites_every_row_as_a_new_version(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(5)])
    result = writer([make_row(i) for i in (7, 8)], mode="replace")
    assert (result.version, result.rows_inserted, result.rows_deleted, result.row_count) == (1, 2, 5, 2)
    assert [r["id"] for r in all_rows(uri)] == [7, 8]
    assert [r["id"] for r in all_rows(uri, version=0)] == [0, 1, 2, 3, 4]


def test_upsert_updates_matched_rows_in_place_and_they_keep_their_row_id(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(3)])
    before = {r["id"]: r[ROW_ID] for r in all_rows(uri)}
    result = writer([make_row(1, name="changed"), make_row(5)], mode="upsert")
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged, result.row_count) == (
        1,
        1,
        0,
        4,
    )
    after = {r["id"]: r for r in all_rows(uri)}
    assert after[1]["name"] == "changed"
    assert after[1][ROW_ID] == before[1]
    assert after[0][ROW_ID] == before[0]
    assert after[5][ROW_ID] not in before.values()


def test_upsert_that_changes_nothing_counts_no_update_and_commits_no_version(
    uri: str, writer: Writer
) -> None:
    first = writer([make_row(i) for i in range(3)])
    result = writer([make_row(0), make_row(1)], mode="upsert")
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (0, 0, 2)
    assert result.committed is False
    assert result.version == first.version
    assert [v.version for v in versions(uri)] == [0]


def test_upsert_counts_only_rows_whose_values_changed(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(4)])
    result = writer([make_row(0), make_row(1, amount=None), make_row(2, where=None)], mode="upsert")
    assert (result.rows_updated, result.rows_unchanged, result.committed) == (2, 1, True)


def test_upsert_creates_the_table_when_missing(uri: str, writer: Writer) -> None:
    result = writer([make_row(1), make_row(2)], mode="upsert")
    assert (result.version, result.rows_inserted) == (0, 2)


def test_upsert_without_key_columns_is_refused(uri: str, writer: Writer) -> None:
    with pytest.raises(LakeSchemaError, match="key column"):
        writer([make_row(1)], mode="upsert", columns=NO_KEY_COLUMNS)


def test_upsert_with_a_repeated_or_empty_key_is_refused(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    with pytest.raises(LakeDataError, match="repeat the key"):
        writer([make_row(2), make_row(2)], mode="upsert")
    with pytest.raises(LakeDataError, match="'id' is empty"):
        writer([make_row(2, id=None)], mode="upsert")


def test_commit_metadata_is_listed_with_each_version_newest_first(uri: str, writer: Writer) -> None:
    writer([make_row(1)], metadata={"who": "alice", "job": "7"})
    writer([make_row(1, name="x")], mode="upsert", metadata={"who": "bob", "note": "fix 名称"})
    listed = versions(uri)
    assert [(v.version, v.operation) for v in listed] == [(1, "MERGE"), (0, "WRITE")]
    assert listed[0].metadata == {"who": "bob", "note": "fix 名称"}
    assert listed[1].metadata == {"who": "alice", "job": "7"}
    assert [v.num_rows for v in listed] == [1, 1]
    assert all(v.timestamp.tzinfo is UTC for v in listed)
    assert abs((datetime.now(UTC) - listed[0].timestamp).total_seconds()) < 120


def test_versions_know_the_row_count_after_each_kind_of_commit(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(4)])  # 4
    writer([make_row(9)])  # 5
    writer([make_row(1, name="x"), make_row(20), make_row(21)], mode="upsert")  # 7
    compact(uri)  # 7
    writer([make_row(i) for i in range(3)], mode="replace")  # 3
    listed = versions(uri)
    assert [(v.operation, v.num_rows) for v in listed] == [
        ("WRITE", 3),
        ("OPTIMIZE", 7),
        ("MERGE", 7),
        ("WRITE", 5),
        ("WRITE", 4),
    ]
    assert [v.num_rows for v in versions(uri, limit=2)] == [3, 7]


def test_metadata_must_be_strings(uri: str) -> None:
    with pytest.raises(LakeDataError, match="strings"):
        write_version(
            uri,
            table_of([make_row(1)]),
            columns=COLUMNS,
            mode="append",
            row_id_start=1,
            metadata={"n": 1},  # type: ignore[dict-item]
        )


def test_data_that_does_not_match_the_declared_columns_is_refused_naming_the_column(uri: str) -> None:
    data = table_of([make_row(1)]).drop_columns(["amount"])
    with pytest.raises(LakeSchemaError, match="'amount'") as caught:
        write_version(uri, data, columns=COLUMNS, mode="append", row_id_start=1, metadata={})
    assert caught.value.detail["column"] == "amount"
    extra = table_of([make_row(1)]).append_column("surprise", pa.array([1]))
    with pytest.raises(LakeSchemaError, match="'surprise'"):
        write_version(uri, extra, columns=COLUMNS, mode="append", row_id_start=1, metadata={})
    wrong = table_of([make_row(1)]).set_column(1, "name", pa.array([[1]]))
    with pytest.raises(LakeSchemaError, match="'name'"):
        write_version(uri, wrong, columns=COLUMNS, mode="append", row_id_start=1, metadata={})


def test_naive_timestamps_are_refused(uri: str) -> None:
    data = table_of([make_row(1)])
    naive = data.set_column(5, "at", pc.cast(data.column("at"), pa.timestamp("us")))
    with pytest.raises(LakeSchemaError, match="naive"):
        write_version(uri, naive, columns=COLUMNS, mode="append", row_id_start=1, metadata={})


def test_safe_casts_are_applied_to_near_types(uri: str) -> None:
    data = table_of([make_row(1)])
    narrower = data.set_column(0, "id", pa.array([1], pa.int32()))
    write_version(uri, narrower, columns=COLUMNS, mode="append", row_id_start=1, metadata={})
    assert all_rows(uri)[0]["id"] == 1


def test_append_with_a_changed_schema_is_refused_naming_the_column(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    added = [*COLUMNS, ColumnSpec("extra", ColumnType.INTEGER)]
    with pytest.raises(LakeSchemaError, match="'extra' is declared but not in the table") as caught:
        writer([{**make_row(2), "extra": 1}], columns=added)
    assert caught.value.detail["column"] == "extra"
    removed = [c for c in COLUMNS if c.name != "select"]
    with pytest.raises(LakeSchemaError, match="'select' is in the table but not declared"):
        writer([make_row(2)], columns=removed)
    retyped = [ColumnSpec("amount", ColumnType.STRING) if c.name == "amount" else c for c in COLUMNS]
    with pytest.raises(LakeSchemaError, match="'amount' is stored as decimal but declared as string"):
        writer([make_row(2, amount="1")], mode="upsert", columns=retyped)


def test_replace_with_a_new_schema_succeeds_and_old_versions_keep_theirs(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    new_columns = [ColumnSpec("id", ColumnType.INTEGER, is_key=True), ColumnSpec("amount", ColumnType.STRING)]
    result = writer([{"id": 1, "amount": "one"}], mode="replace", columns=new_columns)
    assert result.version == 1
    assert all_rows(uri, columns=new_columns) == [{ROW_ID: 2, "id": 1, "amount": "one"}]
    old = read(uri, columns=new_columns, version=0, limit=5)
    assert old.rows.column_names == [c.name for c in COLUMNS]
    assert old.rows.column("amount").type == pa.float64()


def test_replace_with_the_same_columns_in_another_order_succeeds(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    reordered = list(reversed(COLUMNS))
    writer([make_row(2)], mode="replace", columns=reordered)
    assert [r["id"] for r in all_rows(uri)] == [2]


def test_reading_a_missing_version_names_the_latest(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    writer([make_row(2)])
    with pytest.raises(LakeNotFound, match="version 5 does not exist; the latest version is 1") as caught:
        read(uri, columns=COLUMNS, version=5)
    assert caught.value.detail["latest"] == 1
    with pytest.raises(LakeNotFound, match="latest version is 1"):
        count(uri, columns=COLUMNS, version=-1)


def test_a_missing_table_is_not_found(tmp_path: Any) -> None:
    with pytest.raises(LakeNotFound, match="no dataset table"):
        read(str(tmp_path / "nothing"), columns=COLUMNS)
    with pytest.raises(LakeNotFound):
        versions(str(tmp_path / "nothing"))
    assert not table_exists(str(tmp_path / "nothing"))


def test_lake_errors_are_platform_errors_with_statuses() -> None:
    from zhishe.catalog.lake import LakeConflictError, LakeQueryError
    from zhishe.core.errors import ZhisheError

    assert issubclass(LakeError, ZhisheError)
    assert LakeQueryError("x").status_code == 422
    assert LakeConflictError("x").status_code == 409
    assert LakeNotFound("x").status_code == 404
    assert LakeError("x", detail={"a": 1}).detail == {"a": 1}


def test_files_are_written_with_small_row_groups_and_statistics(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(10)])
    actions = pa.table(DeltaTable(uri).get_add_actions(flatten=True))
    assert actions.column(f"min.{ROW_ID}").to_pylist() == [1]
    assert actions.column(f"max.{ROW_ID}").to_pylist() == [10]


def test_compact_sorts_files_by_row_id_and_keeps_every_row_and_version(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(5)])
    writer([make_row(i, name="new") for i in (1, 3)], mode="upsert")
    writer([make_row(i) for i in range(10, 13)])
    before = all_rows(uri)
    version = compact(uri)
    assert version == 3
    after = all_rows(uri)
    assert after == before
    assert [r[ROW_ID] for r in after] == sorted(r[ROW_ID] for r in after)
    assert len(DeltaTable(uri).file_uris()) == 1
    assert all_rows(uri, version=0)[0]["id"] == 0
    assert versions(uri)[0].operation == "OPTIMIZE"


def test_compact_by_an_unknown_column_is_refused(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    with pytest.raises(LakeError, match="'nope'"):
        compact(uri, sort_by=["nope"])

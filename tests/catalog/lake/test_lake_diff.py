"""Diffs between versions, matched on keys or on row ids then content."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lake_helpers import COLUMNS, NO_KEY_COLUMNS, make_row

from zhishe.catalog.lake import LakeSchemaError, WriteResult, diff
from zhishe.catalog.types import ColumnSpec, ColumnType

Writer = Callable[..., WriteResult]


def test_diff_with_keys_counts_added_removed_and_changed(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(5)])
    writer(
        [
            make_row(1, name="renamed", amount=None),
            make_row(2, where=None),
            *(make_row(i) for i in (0, 3, 9)),
        ],
        mode="replace",
    )
    result = diff(uri, columns=COLUMNS, from_version=0, to_version=1)
    assert (result.matched_on, result.key) == ("key", ["id"])
    assert (result.added, result.removed, result.changed) == (1, 1, 2)
    assert result.per_column_changes == {
        "name": 1,
        "amount": 1,
        "active": 0,
        "day": 0,
        "at": 0,
        "where": 1,
        "select": 0,
    }
    assert [r["id"] for r in result.samples["added"]] == [9]
    assert [r["id"] for r in result.samples["removed"]] == [4]
    assert result.samples["changed"] == [
        {
            "key": {"id": 1},
            "before": {"name": "name-1", "amount": 1.5},
            "after": {"name": "renamed", "amount": None},
        },
        {"key": {"id": 2}, "before": {"where": {"lat": 30.02, "lon": 120.02}}, "after": {"where": None}},
    ]
    assert result.schema_changes == {"added": [], "removed": [], "retyped": []}


def test_diff_in_reverse_swaps_added_and_removed(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    writer([make_row(2)])
    forward = diff(uri, columns=COLUMNS, from_version=0, to_version=1)
    backward = diff(uri, columns=COLUMNS, from_version=1, to_version=0)
    assert (forward.added, forward.removed) == (1, 0)
    assert (backward.added, backward.removed) == (0, 1)


def test_diff_of_a_version_with_itself_is_empty(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(3)])
    result = diff(uri, columns=COLUMNS, from_version=0, to_version=0)
    assert (result.added, result.removed, result.changed) == (0, 0, 0)


def test_diff_without_keys_matches_upserted_rows_on_their_row_id(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(4)])
    writer([make_row(2, name="changed"), make_row(8)], mode="upsert")
    result = diff(uri, columns=NO_KEY_COLUMNS, from_version=0, to_version=1)
    assert result.matched_on == "row_id"
    assert (result.added, result.removed, result.changed) == (1, 0, 1)
    assert result.per_column_changes["name"] == 1 and result.per_column_changes["id"] == 0
    assert result.samples["changed"] == [
        {"key": {"_row_id": 3}, "before": {"name": "name-2"}, "after": {"name": "changed"}}
    ]
    assert result.samples["added"][0]["id"] == 8


def test_diff_without_keys_falls_back_to_content_after_a_replace(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(4)])
    # Same content under new row ids, one row dropped, one duplicated, one new.
    writer([make_row(0), make_row(1), make_row(1), make_row(2), make_row(7)], mode="replace")
    result = diff(uri, columns=NO_KEY_COLUMNS, from_version=0, to_version=1)
    assert (result.added, result.removed, result.changed) == (2, 1, 0)
    assert sorted(r["id"] for r in result.samples["added"]) == [1, 7]
    assert [r["id"] for r in result.samples["removed"]] == [3]


def test_diff_reports_schema_changes_and_compares_retyped_columns_as_text(uri: str, writer: Writer) -> None:
    first = [
        ColumnSpec("id", ColumnType.INTEGER, is_key=True),
        ColumnSpec("v", ColumnType.INTEGER),
        ColumnSpec("gone", ColumnType.STRING),
    ]
    second = [
        ColumnSpec("id", ColumnType.INTEGER, is_key=True),
        ColumnSpec("v", ColumnType.STRING),
        ColumnSpec("new", ColumnType.DATE),
    ]
    writer([{"id": 1, "v": 10, "gone": "x"}, {"id": 2, "v": 20, "gone": "y"}], columns=first)
    writer(
        [{"id": 1, "v": "10", "new": None}, {"id": 2, "v": "twenty", "new": None}],
        mode="replace",
        columns=second,
    )
    result = diff(uri, columns=second, from_version=0, to_version=1)
    assert result.schema_changes == {
        "added": ["new"],
        "removed": ["gone"],
        "retyped": [{"column": "v", "from": "integer", "to": "string"}],
    }
    assert (result.added, result.removed, result.changed) == (0, 0, 1)
    assert result.samples["changed"] == [{"key": {"id": 2}, "before": {"v": 20}, "after": {"v": "twenty"}}]


def test_diff_on_a_key_missing_from_a_version_is_refused(uri: str, writer: Writer) -> None:
    old = [ColumnSpec("code", ColumnType.STRING), ColumnSpec("v", ColumnType.INTEGER)]
    new = [ColumnSpec("id", ColumnType.INTEGER, is_key=True), ColumnSpec("v", ColumnType.INTEGER)]
    writer([{"code": "a", "v": 1}], columns=old)
    writer([{"id": 1, "v": 1}], mode="replace", columns=new)
    with pytest.raises(LakeSchemaError, match="'id' is not in version 0"):
        diff(uri, columns=new, from_version=0, to_version=1)


def test_diff_sample_size_is_bounded(uri: str, writer: Writer) -> None:
    writer([make_row(1)])
    writer([make_row(i) for i in range(2, 40)])
    result = diff(uri, columns=COLUMNS, from_version=0, to_version=1, sample=5)
    assert result.added == 38 and len(result.samples["added"]) == 5
    assert diff(uri, columns=COLUMNS, from_version=0, to_version=1, sample=0).samples["added"] == []

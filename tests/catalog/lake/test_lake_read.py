"""The read function: time travel, select, every filter op, hostile input, tokens, count, aggregate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import COLUMNS, T0, make_row

from zhishe.catalog.lake import (
    LakeQueryError,
    WriteResult,
    aggregate,
    count,
    parse_filter,
    read,
    rows_to_dicts,
)
from zhishe.catalog.lake.filters import And, Condition, Not, Or, filter_to_json
from zhishe.catalog.types import ROW_ID, arrow_schema

Writer = Callable[..., WriteResult]


@pytest.fixture
def ten(uri: str, writer: Writer) -> str:
    """Ten rows, ids 0..9, plus one row full of awkward text and NULLs (id 10)."""
    rows = [make_row(i) for i in range(10)]
    rows.append(
        make_row(
            10,
            name="100% _real_ O'Brien; --",
            amount=None,
            active=None,
            day=None,
            at=None,
            where=None,
            select=None,
        )
    )
    writer(rows)
    return uri


def ids(where: Any, uri: str, **kwargs: Any) -> list[int]:
    page = read(uri, columns=COLUMNS, where=parse_filter(where), select=["id"], limit=100, **kwargs)
    return page.rows.column("id").to_pylist()


def test_read_returns_declared_columns_without_the_row_id(ten: str) -> None:
    page = read(ten, columns=COLUMNS, limit=3)
    assert page.rows.schema == arrow_schema(COLUMNS)
    assert page.rows.column("id").to_pylist() == [0, 1, 2]
    assert page.version == 0 and page.total is None and page.next is not None


def test_select_picks_and_orders_columns_and_can_ask_for_the_row_id(ten: str) -> None:
    page = read(ten, columns=COLUMNS, select=["select", ROW_ID, "id"], limit=2)
    assert page.rows.column_names == ["select", ROW_ID, "id"]
    assert page.rows.to_pylist() == [
        {"select": "s0", ROW_ID: 1, "id": 0},
        {"select": "s1", ROW_ID: 2, "id": 1},
    ]


def test_time_travel_reads_an_old_version_exactly(uri: str, writer: Writer) -> None:
    writer([make_row(i) for i in range(3)])
    snapshot = read(uri, columns=COLUMNS, limit=100).rows
    writer([make_row(1, name="changed"), make_row(7)], mode="upsert")
    writer([make_row(20)], mode="replace")
    old = read(uri, columns=COLUMNS, version=0, limit=100)
    assert old.version == 0
    assert old.rows.equals(snapshot)
    assert read(uri, columns=COLUMNS, version=1, select=["id", "name"], limit=100).rows.to_pylist() == [
        {"id": 0, "name": "name-0"},
        {"id": 1, "name": "changed"},
        {"id": 2, "name": "name-2"},
        {"id": 7, "name": "name-0"},
    ]
    assert read(uri, columns=COLUMNS, limit=100).rows.column("id").to_pylist() == [20]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"column": "id", "op": "=", "value": 3}, [3]),
        ({"column": "id", "op": "!=", "value": 3}, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]),
        ({"column": "amount", "op": "<", "value": 3}, [0, 1]),
        ({"column": "amount", "op": "<=", "value": "3"}, [0, 1, 2]),
        ({"column": "id", "op": ">", "value": "8"}, [9, 10]),
        ({"column": "id", "op": ">=", "value": 9.0}, [9, 10]),
        ({"column": "id", "op": "in", "value": [1, "4", 99]}, [1, 4]),
        ({"column": "name", "op": "not_in", "value": ["name-0", "name-1"]}, [2, 3, 4, 5, 6, 9, 10]),
        ({"column": "day", "op": "between", "value": ["2024-01-03", "2024-01-05"]}, [2, 3, 4]),
        ({"column": "at", "op": ">=", "value": "2024-01-01T16:00:00+08:00"}, [8, 9]),
        ({"column": "at", "op": "=", "value": "2024-01-01T02:00:00Z"}, [2]),
        ({"column": "active", "op": "=", "value": "true"}, [0, 2, 4, 6, 8]),
        ({"column": "active", "op": "=", "value": False}, [1, 3, 5, 7, 9]),
        ({"column": "where", "op": "is_null"}, [10]),
        ({"column": "amount", "op": "not_null"}, list(range(10))),
        ({"column": "select", "op": "contains", "value": "1"}, [1]),
        ({"column": "name", "op": "starts_with", "value": "name-3"}, [3]),
        ({"not": {"column": "amount", "op": ">", "value": 3}}, [0, 1, 2, 10]),
        (
            {
                "or": [
                    {"column": "id", "op": "=", "value": 1},
                    {"and": [{"column": "id", "op": ">", "value": 7}]},
                ]
            },
            [1, 8, 9, 10],
        ),
        (
            {
                "and": [
                    {"column": "id", "op": ">", "value": 2},
                    {"not": {"column": "active", "op": "=", "value": True}},
                ]
            },
            [3, 5, 7, 9, 10],
        ),
    ],
)
def test_every_filter_op_selects_the_right_rows(ten: str, where: dict[str, Any], expected: list[int]) -> None:
    assert ids(where, ten) == expected


def test_contains_and_starts_with_treat_percent_and_underscore_literally(ten: str) -> None:
    assert ids({"column": "name", "op": "contains", "value": "%"}, ten) == [10]
    assert ids({"column": "name", "op": "contains", "value": "_"}, ten) == [10]
    assert ids({"column": "name", "op": "contains", "value": "0% _r"}, ten) == [10]
    assert ids({"column": "name", "op": "starts_with", "value": "1%"}, ten) == []
    assert ids({"column": "name", "op": "starts_with", "value": "100% _"}, ten) == [10]
    assert ids({"column": "name", "op": "contains", "value": "n_me"}, ten) == []


def test_hostile_values_are_only_ever_values(ten: str) -> None:
    hostile = "'; DROP TABLE x; --"
    assert ids({"column": "name", "op": "=", "value": hostile}, ten) == []
    assert ids({"column": "name", "op": "contains", "value": "O'Brien; --"}, ten) == [10]
    assert ids({"column": "name", "op": "in", "value": [hostile, '"); SELECT 1; --']}, ten) == []
    assert read(ten, columns=COLUMNS, limit=100).rows.num_rows == 11


def test_hostile_column_names_are_refused_as_unknown(ten: str) -> None:
    for name in ['id" OR 1=1 --', "id; DROP TABLE t", "*", ROW_ID]:
        with pytest.raises(LakeQueryError, match="unknown column") as caught:
            read(ten, columns=COLUMNS, where=parse_filter({"column": name, "op": "=", "value": 1}))
        assert caught.value.detail["column"] == name


def test_unknown_columns_are_refused_everywhere_naming_them(ten: str) -> None:
    with pytest.raises(LakeQueryError, match="'nope'"):
        read(ten, columns=COLUMNS, select=["id", "nope"])
    with pytest.raises(LakeQueryError, match="'nope'"):
        read(ten, columns=COLUMNS, order=[("nope", "asc")])
    with pytest.raises(LakeQueryError, match="'nope'"):
        count(ten, columns=COLUMNS, where=parse_filter({"column": "nope", "op": "is_null"}))
    with pytest.raises(LakeQueryError, match="'nope'"):
        aggregate(ten, columns=COLUMNS, group_by=["nope"], measures=[("count", None)])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("id", "twelve"),
        ("id", 1.5),
        ("id", True),
        ("id", 2**64),
        ("amount", "lots"),
        ("active", "maybe"),
        ("day", "2024-13-01"),
        ("day", "2024-01-01T00:00:00+00:00"),
        ("at", "yesterday"),
        ("at", "2024-01-01T00:00:00"),
        ("where", "30,120"),
        ("name", 1.5),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_column_and_value(
    ten: str, column: str, value: Any
) -> None:
    with pytest.raises(LakeQueryError) as caught:
        read(ten, columns=COLUMNS, where=parse_filter({"column": column, "op": "=", "value": value}))
    assert repr(column) in caught.value.message
    assert caught.value.detail["column"] == column
    if column != "where":
        assert repr(value) in caught.value.message


def test_contains_on_a_non_text_column_is_refused(ten: str) -> None:
    with pytest.raises(LakeQueryError, match="text columns only; 'id' is integer"):
        read(ten, columns=COLUMNS, where=parse_filter({"column": "id", "op": "contains", "value": "1"}))


@pytest.mark.parametrize(
    "bad",
    [
        "id = 1",
        {"column": "id", "op": "like", "value": "x"},
        {"column": "id", "op": "=", "value": None},
        {"column": "id", "op": "=", "value": {"a": 1}},
        {"column": "id", "op": "in", "value": 1},
        {"column": "id", "op": "in", "value": []},
        {"column": "id", "op": "between", "value": [1]},
        {"column": "id", "op": "is_null", "value": 1},
        {"column": "name", "op": "contains", "value": 1},
        {"and": []},
        {"and": [{"column": "id", "op": "=", "value": 1}], "or": []},
        {"column": "id", "op": "=", "value": 1, "extra": True},
        {"not": "x"},
    ],
)
def test_malformed_filters_are_refused(bad: Any) -> None:
    with pytest.raises(LakeQueryError):
        parse_filter(bad)


def test_deeply_nested_filters_are_refused() -> None:
    deep: dict[str, Any] = {"column": "id", "op": "=", "value": 1}
    for _ in range(40):
        deep = {"not": deep}
    with pytest.raises(LakeQueryError, match="deeper"):
        parse_filter(deep)


def test_filters_round_trip_through_json() -> None:
    where = And(
        (Condition("id", ">", 1), Or((Not(Condition("name", "is_null")), Condition("id", "in", (1, 2)))))
    )
    assert parse_filter(filter_to_json(where)) == where


def test_limit_must_be_between_one_and_ten_thousand(ten: str) -> None:
    for limit in (0, 10_001, -1):
        with pytest.raises(LakeQueryError, match="limit"):
            read(ten, columns=COLUMNS, limit=limit)
    assert read(ten, columns=COLUMNS, limit=10_000).rows.num_rows == 11


def test_total_counts_every_matching_row_not_just_the_page(ten: str) -> None:
    page = read(
        ten,
        columns=COLUMNS,
        where=parse_filter({"column": "id", "op": ">", "value": 2}),
        limit=2,
        with_total=True,
    )
    assert page.total == 8 and page.rows.num_rows == 2


def test_paging_walks_every_row_once_in_order(ten: str) -> None:
    seen: list[int] = []
    token = None
    order = [("active", "desc"), ("amount", "desc")]
    while True:
        page = read(ten, columns=COLUMNS, order=order, after=token, limit=3, select=["id"])  # type: ignore[arg-type]
        seen += page.rows.column("id").to_pylist()
        token = page.next
        if token is None:
            break
    assert seen == [10, 8, 6, 4, 2, 0, 9, 7, 5, 3, 1]


def test_the_last_page_has_no_next_token(ten: str) -> None:
    page = read(ten, columns=COLUMNS, limit=11)
    assert page.next is None and page.rows.num_rows == 11


def test_a_token_is_rejected_for_another_order_or_filter(ten: str) -> None:
    token = read(ten, columns=COLUMNS, order=[("amount", "asc")], limit=2).next
    assert token is not None
    with pytest.raises(LakeQueryError, match="invalid paging token"):
        read(ten, columns=COLUMNS, order=[("amount", "desc")], after=token)
    with pytest.raises(LakeQueryError, match="invalid paging token"):
        read(ten, columns=COLUMNS, after=token)
    with pytest.raises(LakeQueryError, match="invalid paging token"):
        read(
            ten,
            columns=COLUMNS,
            order=[("amount", "asc")],
            where=parse_filter({"column": "id", "op": ">", "value": 0}),
            after=token,
        )
    assert read(ten, columns=COLUMNS, order=[("amount", "asc")], after=token, limit=1).rows.num_rows == 1


def test_tampered_or_garbled_tokens_are_rejected(ten: str) -> None:
    import base64
    import json

    token = read(ten, columns=COLUMNS, order=[("name", "asc")], limit=2).next
    assert token is not None
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload["v"][0] = "zzz"
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    for bad in [edited, token[:-3], token + "x", "not a token", "", "eyJ9", "%%%%"]:
        with pytest.raises(LakeQueryError, match="invalid paging token"):
            read(ten, columns=COLUMNS, order=[("name", "asc")], after=bad)


def test_ordering_by_a_point_is_refused(ten: str) -> None:
    with pytest.raises(LakeQueryError, match="point"):
        read(ten, columns=COLUMNS, order=[("where", "asc")])
    with pytest.raises(LakeQueryError, match="'asc' or 'desc'"):
        read(ten, columns=COLUMNS, order=[("id", "up")])  # type: ignore[list-item]


def test_newest_first_by_row_id(ten: str) -> None:
    page = read(ten, columns=COLUMNS, order=[(ROW_ID, "desc")], limit=3, select=["id"])
    assert page.rows.column("id").to_pylist() == [10, 9, 8]
    assert page.next is not None
    second = read(ten, columns=COLUMNS, order=[(ROW_ID, "desc")], limit=3, select=["id"], after=page.next)
    assert second.rows.column("id").to_pylist() == [7, 6, 5]


def test_count_with_and_without_a_filter(ten: str) -> None:
    assert count(ten, columns=COLUMNS) == 11
    assert (
        count(ten, columns=COLUMNS, where=parse_filter({"column": "active", "op": "=", "value": True})) == 5
    )


def test_rows_to_dicts_renders_json_values(ten: str) -> None:
    rows = rows_to_dicts(read(ten, columns=COLUMNS, limit=1).rows)
    assert rows == [
        {
            "id": 0,
            "name": "name-0",
            "amount": 0.0,
            "active": True,
            "day": "2024-01-01",
            "at": "2024-01-01T00:00:00+00:00",
            "where": {"lat": 30.0, "lon": 120.0},
            "select": "s0",
        }
    ]
    assert rows_to_dicts(pa.table({"x": [float("nan"), float("inf"), 1.5]})) == [
        {"x": None},
        {"x": None},
        {"x": 1.5},
    ]


def test_aggregate_groups_and_measures(ten: str) -> None:
    result = aggregate(
        ten,
        columns=COLUMNS,
        group_by=["active"],
        measures=[
            ("count", None),
            ("sum", "id"),
            ("avg", "amount"),
            ("min", "day"),
            ("max", "at"),
            ("count", "at"),
        ],
    )
    assert result.column_names == ["active", "count", "sum_id", "avg_amount", "min_day", "max_at", "count_at"]
    assert result.schema.field("sum_id").type == pa.int64()
    rows = result.to_pylist()
    assert rows[0] == {
        "active": False,
        "count": 5,
        "sum_id": 25,
        "avg_amount": 7.5,
        "min_day": date(2024, 1, 2),
        "max_at": T0 + timedelta(hours=9),
        "count_at": 5,
    }
    assert rows[2]["active"] is None and rows[2]["count"] == 1 and rows[2]["count_at"] == 0
    assert result.schema.metadata[b"zhishe.truncated"] == b"false"


def test_aggregate_time_buckets_in_a_time_zone(uri: str, writer: Writer) -> None:
    moments = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 10, 15, 16, 23)]
    writer([make_row(i, at=m) for i, m in enumerate(moments)])
    utc = aggregate(uri, columns=COLUMNS, group_by=[], measures=[("count", None)], time_bucket=("at", "day"))
    assert utc.to_pylist() == [{"at": datetime(2024, 1, 1, tzinfo=UTC), "count": 5}]
    local = aggregate(
        uri,
        columns=COLUMNS,
        group_by=[],
        measures=[("count", None)],
        time_bucket=("at", "day"),
        time_zone="Asia/Shanghai",
    )
    assert local.to_pylist() == [
        {"at": datetime(2023, 12, 31, 16, tzinfo=UTC), "count": 3},  # 08:00, 18:00, 23:00 on 1 January
        {"at": datetime(2024, 1, 1, 16, tzinfo=UTC), "count": 2},  # 00:00 and 07:00 on 2 January
    ]
    months = aggregate(
        uri, columns=COLUMNS, group_by=["active"], measures=[("count", None)], time_bucket=("day", "month")
    )
    assert months.column("day").to_pylist() == [date(2024, 1, 1), date(2024, 1, 1)]


def test_aggregate_refuses_meaningless_requests(ten: str) -> None:
    with pytest.raises(LakeQueryError, match="numeric"):
        aggregate(ten, columns=COLUMNS, group_by=[], measures=[("sum", "name")])
    with pytest.raises(LakeQueryError, match="not one of"):
        aggregate(ten, columns=COLUMNS, group_by=[], measures=[("median", "id")])  # type: ignore[list-item]
    with pytest.raises(LakeQueryError, match="no hours"):
        aggregate(ten, columns=COLUMNS, group_by=[], measures=[("count", None)], time_bucket=("day", "hour"))
    with pytest.raises(LakeQueryError, match="time zone"):
        aggregate(
            ten,
            columns=COLUMNS,
            group_by=[],
            measures=[("count", None)],
            time_bucket=("at", "day"),
            time_zone="Mars/Base",
        )
    with pytest.raises(LakeQueryError, match="named 'count'"):
        aggregate(ten, columns=COLUMNS, group_by=[], measures=[("count", None), ("count", None)])


def test_aggregate_limit_marks_truncation(ten: str) -> None:
    result = aggregate(ten, columns=COLUMNS, group_by=["id"], measures=[("count", None)], limit=4)
    assert result.num_rows == 4
    assert result.schema.metadata[b"zhishe.truncated"] == b"true"


def test_infinite_values_are_found_although_the_log_cannot_hold_them(uri: str, writer: Writer) -> None:
    # JSON statistics have no -inf, so the file's logged minimum is missing; it must not be pruned.
    writer([make_row(1, amount=None), make_row(2, amount=0.0), make_row(3, amount=float("-inf"))])
    assert ids({"column": "amount", "op": "<", "value": 0}, uri) == [3]
    assert ids({"column": "amount", "op": "<", "value": "-1e308"}, uri) == [3]


def test_nan_matches_no_comparison_and_not_is_the_complement(uri: str, writer: Writer) -> None:
    writer([make_row(1, amount=float("nan")), make_row(2, amount=5.0), make_row(3, amount=None)])
    assert ids({"column": "amount", "op": ">", "value": 1}, uri) == [2]
    assert ids({"column": "amount", "op": "!=", "value": 1}, uri) == [2]
    assert ids({"column": "amount", "op": "not_in", "value": [1]}, uri) == [2]
    assert ids({"not": {"column": "amount", "op": ">", "value": 1}}, uri) == [1, 3]
    assert ids({"column": "amount", "op": "not_null"}, uri) == [1, 2]
    with pytest.raises(LakeQueryError, match="NaN"):
        ids({"column": "amount", "op": "=", "value": "NaN"}, uri)

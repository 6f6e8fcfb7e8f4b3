"""Column rules: pseudonyms, generalisation labels, suppression, and the shape of the result."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy import Hierarchy, apply_rules, parse_policy

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
ADDRESSES = Hierarchy(
    {
        "1 Elm St": ("Building A", "Riverside", "East District"),
        "2 Elm St": ("Building A", "Riverside", "East District"),
        "3 Oak St": ("Building B", "Riverside", "East District"),
        "9 Pine St": ("Building C", "Hilltop", "West District"),
    },
    levels=("building", "community", "district"),
)


def _types(table: pa.Table) -> dict[str, str]:
    names = {pa.int64(): "integer", pa.float64(): "decimal", pa.string(): "string", pa.date32(): "date"}
    return {f.name: names.get(f.type, "datetime") for f in table.schema}


def _apply(table: pa.Table, rules: dict[str, Any], key: bytes | None = KEY) -> pa.Table:
    policy = parse_policy({"columns": rules}, _types(table))
    return apply_rules(table, policy, key=key, hierarchies={"address": ADDRESSES})


def test_pseudonyms_are_stable_for_a_key_and_differ_for_another() -> None:
    table = pa.table({"id": ["r1", "r2", None, "r1"]})
    first = _apply(table, {"id": "pseudonymise"}).column("id").to_pylist()
    again = _apply(table, {"id": "pseudonymise"}).column("id").to_pylist()
    other = _apply(table, {"id": "pseudonymise"}, key=OTHER_KEY).column("id").to_pylist()
    assert first == again
    assert first[0] == first[3] != first[1]
    assert first[2] is None and other[2] is None
    assert first[0].startswith("p_") and len(first[0]) == 18
    assert "r1" not in first
    assert set(first[:2]).isdisjoint(other[:2])


def test_pseudonymising_without_a_long_enough_key_is_refused() -> None:
    table = pa.table({"id": ["r1"]})
    for key in (None, b"short"):
        with pytest.raises(Invalid) as caught:
            _apply(table, {"id": "pseudonymise"}, key=key)
        assert caught.value.detail == {"column": "id", "field": "key"}


def test_integer_ranges_have_closed_labels_with_top_and_bottom_codes() -> None:
    table = pa.table({"age": [3, 17, 18, 62, 64, 65, 89, 90, 97, None]})
    rule = {"rule": "generalise", "method": "range", "width": 5, "bottom": 18, "top": 90}
    assert _apply(table, {"age": rule}).column("age").to_pylist() == [
        "<18",
        "<18",
        "18-19",
        "60-64",
        "60-64",
        "65-69",
        "85-89",
        "90+",
        "90+",
        None,
    ]


def test_ranges_by_edges_and_decimal_ranges_are_half_open() -> None:
    table = pa.table({"income": [500.0, 1000.0, 2500.5, 9999.0, 10000.0]})
    by_edges = {"rule": "generalise", "method": "range", "edges": [1000, 5000, 10000]}
    assert _apply(table, {"income": by_edges}).column("income").to_pylist() == [
        "<1000",
        "[1000, 5000)",
        "[1000, 5000)",
        "[5000, 10000)",
        "10000+",
    ]
    by_width = {"rule": "generalise", "method": "range", "width": 2500, "origin": 0}
    assert _apply(table, {"income": by_width}).column("income").to_pylist()[:3] == [
        "[0, 2500)",
        "[0, 2500)",
        "[2500, 5000)",
    ]


def test_topcode_and_bottomcode_alone_keep_the_other_values() -> None:
    table = pa.table({"age": [10, 50, 95]})
    top = {"rule": "generalise", "method": "topcode", "threshold": 90}
    bottom = {"rule": "generalise", "method": "bottomcode", "threshold": 18}
    assert _apply(table, {"age": top}).column("age").to_pylist() == ["10", "50", "90+"]
    assert _apply(table, {"age": bottom}).column("age").to_pylist() == ["<18", "50", "95"]


def test_dates_truncate_to_month_or_year_and_datetimes_to_a_local_day() -> None:
    table = pa.table(
        {
            "born": pa.array([dt.date(2026, 3, 15), dt.date(1950, 12, 31), None], pa.date32()),
            "seen": pa.array(
                [
                    dt.datetime(2026, 3, 15, 20, 0, tzinfo=dt.UTC),
                    dt.datetime(2026, 3, 15, 1, 0, tzinfo=dt.UTC),
                    None,
                ],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    month = {"rule": "generalise", "method": "date", "unit": "month"}
    year = {"rule": "generalise", "method": "date", "unit": "year"}
    local_day = {"rule": "generalise", "method": "date", "unit": "day", "timezone": "Asia/Shanghai"}
    assert _apply(table, {"born": month, "seen": year}).to_pydict() == {
        "born": ["2026-03", "1950-12", None],
        "seen": ["2026", "2026", None],
    }
    assert _apply(table, {"born": year, "seen": local_day}).to_pydict() == {
        "born": ["2026", "1950", None],
        "seen": ["2026-03-16", "2026-03-15", None],
    }


def test_hierarchy_maps_values_to_a_level_by_name_or_index() -> None:
    table = pa.table({"address": ["1 Elm St", "3 Oak St", "9 Pine St", None]})
    by_name = {"rule": "generalise", "method": "hierarchy", "level": "community"}
    by_index = {"rule": "generalise", "method": "hierarchy", "level": 3}
    assert _apply(table, {"address": by_name}).column("address").to_pylist() == [
        "Riverside",
        "Riverside",
        "Hilltop",
        None,
    ]
    assert _apply(table, {"address": by_index}).column("address").to_pylist()[:3] == [
        "East District",
        "East District",
        "West District",
    ]


def test_a_value_missing_from_the_hierarchy_is_an_error_naming_it() -> None:
    table = pa.table({"address": ["1 Elm St", "7 Nowhere Rd"]})
    with pytest.raises(Invalid) as caught:
        _apply(table, {"address": {"rule": "generalise", "method": "hierarchy", "level": 1}})
    assert "'7 Nowhere Rd'" in caught.value.message
    assert caught.value.detail == {"column": "address", "field": "hierarchy"}


def test_an_unknown_level_name_is_an_error_naming_the_column() -> None:
    table = pa.table({"address": ["1 Elm St"]})
    with pytest.raises(Invalid) as caught:
        _apply(table, {"address": {"rule": "generalise", "method": "hierarchy", "level": "street"}})
    assert "'address'" in caught.value.message and "street" in caught.value.message


def test_a_hierarchy_whose_node_has_two_parents_is_refused() -> None:
    with pytest.raises(Invalid, match="two parents"):
        Hierarchy({"a": ("A", "X"), "b": ("A", "Y")})


def test_suppress_blanks_cells_drop_removes_columns_and_order_is_kept() -> None:
    table = pa.table({"a": [1, 2], "b": ["x", "y"], "c": [1.5, 2.5]})
    out = _apply(table, {"a": "keep", "b": "drop", "c": "suppress"})
    assert out.column_names == ["a", "c"]
    assert out.column("c").to_pylist() == [None, None]
    assert out.schema.field("c").type == pa.float64()


def test_a_column_without_a_rule_is_refused() -> None:
    table = pa.table({"a": [1], "b": [2]})
    policy = parse_policy({"columns": {"a": "keep"}}, {"a": "integer", "b": "integer"})
    with pytest.raises(Invalid) as caught:
        apply_rules(table, policy)
    assert caught.value.detail == {"column": "b", "field": "rule"}

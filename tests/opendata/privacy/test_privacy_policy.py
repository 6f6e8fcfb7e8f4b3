"""Release policies: parsing, validation errors that name the column, the JSON round trip."""

from __future__ import annotations

from typing import Any

import pytest

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy import DPModel, KAnonymity, Measure, NoModel, Rule, parse_policy, unhandled

COLUMNS = {
    "name": "string",
    "resident_id": "string",
    "age": "integer",
    "income": "decimal",
    "born": "date",
    "seen_at": "datetime",
    "address": "string",
    "diagnosis": "string",
    "vaccinated": "boolean",
    "home": "point",
}

FULL: dict[str, Any] = {
    "columns": {
        "name": "drop",
        "resident_id": {"rule": "pseudonymise"},
        "age": {"rule": "keep"},
        "income": {"rule": "generalise", "method": "range", "width": 1000, "top": 20000},
        "born": {"rule": "generalise", "method": "date", "unit": "year"},
        "seen_at": {"rule": "generalise", "method": "date", "unit": "day", "timezone": "Asia/Shanghai"},
        "address": {"rule": "generalise", "method": "hierarchy", "level": "community"},
        "diagnosis": "keep",
        "vaccinated": "suppress",
        "home": "drop",
    },
    "model": {
        "type": "k_anonymity",
        "k": 5,
        "quasi_identifiers": ["age", "address", "born"],
        "sensitive": ["diagnosis"],
        "l": 2,
        "max_suppression": 0.01,
    },
}


def _error(data: dict[str, Any], columns: dict[str, str] | None = None) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse_policy(data, columns or COLUMNS)
    return caught.value


def test_a_full_policy_parses_and_round_trips_through_json() -> None:
    policy = parse_policy(FULL, COLUMNS)
    assert policy.columns["name"] == Rule("drop")
    assert policy.columns["income"] == Rule("generalise", "range", width=1000.0, top=20000.0)
    assert policy.columns["address"].level == "community"
    assert isinstance(policy.model, KAnonymity)
    assert policy.model.quasi_identifiers == ("age", "address", "born")
    assert (policy.model.k, policy.model.l, policy.model.max_suppression) == (5, 2, 0.01)
    assert parse_policy(policy.to_json(), COLUMNS) == policy
    assert policy.output_columns(list(COLUMNS)) == [
        "resident_id",
        "age",
        "income",
        "born",
        "seen_at",
        "address",
        "diagnosis",
        "vaccinated",
    ]


def test_k_anonymity_defaults_are_k_5_and_five_percent_suppression() -> None:
    policy = parse_policy(
        {"columns": {"age": "keep"}, "model": {"type": "k_anonymity", "quasi_identifiers": ["age"]}}, COLUMNS
    )
    assert isinstance(policy.model, KAnonymity)
    assert (policy.model.k, policy.model.l, policy.model.max_suppression) == (5, None, 0.05)


def test_no_model_is_the_default() -> None:
    assert parse_policy({"columns": {"age": "keep"}}, COLUMNS).model == NoModel()


def test_unhandled_lists_the_columns_without_a_rule_in_dataset_order() -> None:
    policy = parse_policy({"columns": {"age": "keep", "name": "drop"}}, COLUMNS)
    assert unhandled(policy, COLUMNS) == [c for c in COLUMNS if c not in ("age", "name")]


@pytest.mark.parametrize(
    ("column", "rule", "field", "words"),
    [
        ("nope", "keep", "column", "not in the dataset"),
        (
            "name",
            {"rule": "generalise", "method": "range", "width": 5},
            "method",
            "not allowed for string columns",
        ),
        (
            "age",
            {"rule": "generalise", "method": "date", "unit": "month"},
            "method",
            "not allowed for integer columns",
        ),
        ("age", {"rule": "generalise", "method": "range"}, "width", "width or edges"),
        ("age", {"rule": "generalise", "method": "range", "width": 0}, "width", "above 0"),
        ("age", {"rule": "generalise", "method": "range", "width": 2.5}, "width", "whole number"),
        ("age", {"rule": "generalise", "method": "range", "edges": [10, 5]}, "edges", "increase"),
        ("age", {"rule": "generalise", "method": "topcode"}, "threshold", "threshold"),
        (
            "age",
            {"rule": "generalise", "method": "range", "width": 5, "bottom": 90, "top": 20},
            "bottom",
            "below top",
        ),
        ("born", {"rule": "generalise", "method": "date", "unit": "day"}, "unit", "month, year"),
        (
            "seen_at",
            {"rule": "generalise", "method": "date", "unit": "day", "timezone": "Mars/Base"},
            "timezone",
            "time zone",
        ),
        ("address", {"rule": "generalise", "method": "hierarchy"}, "level", "level"),
        ("address", {"rule": "generalise"}, "method", "method"),
        ("home", "pseudonymise", "rule", "not allowed for point columns"),
        ("age", "blur", "rule", "not one of"),
        ("age", {"rule": "keep", "width": 3}, "width", "takes no"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_column(column: str, rule: Any, field: str, words: str) -> None:
    error = _error({"columns": {column: rule}})
    assert f"'{column}'" in error.message
    assert words in error.message
    assert error.detail == {"column": column, "field": field}


@pytest.mark.parametrize(
    ("model", "column", "field", "words"),
    [
        ({"k": 1, "quasi_identifiers": ["age"]}, None, "model.k", "at least 2"),
        ({"k": True, "quasi_identifiers": ["age"]}, None, "model.k", "at least 2"),
        ({"quasi_identifiers": []}, None, "model.quasi_identifiers", "at least one"),
        ({"quasi_identifiers": ["ghost"]}, "ghost", "model", "not a column"),
        ({"quasi_identifiers": ["name"]}, "name", "rule", "drops it"),
        ({"quasi_identifiers": ["age"], "sensitive": ["name"]}, "name", "rule", "drops it"),
        ({"quasi_identifiers": ["home"]}, "home", "model.quasi_identifiers", "point"),
        ({"quasi_identifiers": ["age"], "sensitive": ["age"]}, "age", "model.sensitive", "both"),
        ({"quasi_identifiers": ["age"], "sensitive": ["diagnosis"], "l": 0}, None, "model.l", "at least 1"),
        ({"quasi_identifiers": ["age"], "l": 2}, None, "model.sensitive", "sensitive column"),
        ({"quasi_identifiers": ["age"], "max_suppression": 1.5}, None, "model.max_suppression", "share"),
        ({"quasi_identifiers": ["age"], "t": 0.2}, None, "model.t", "takes no"),
    ],
)
def test_a_bad_k_anonymity_model_is_refused(
    model: dict[str, Any], column: str | None, field: str, words: str
) -> None:
    columns = {"name": "drop", "age": "keep", "diagnosis": "keep", "home": "keep"}
    error = _error({"columns": columns, "model": {"type": "k_anonymity", **model}})
    assert words in error.message
    assert error.detail == {"column": column, "field": field}
    if column:
        assert f"'{column}'" in error.message


def test_a_suppressed_sensitive_column_cannot_give_l_diversity() -> None:
    error = _error(
        {
            "columns": {"age": "keep", "diagnosis": "suppress"},
            "model": {
                "type": "k_anonymity",
                "quasi_identifiers": ["age"],
                "sensitive": ["diagnosis"],
                "l": 2,
            },
        }
    )
    assert error.detail == {"column": "diagnosis", "field": "rule"}


def test_a_dp_model_parses_with_measures_and_declared_keys() -> None:
    policy = parse_policy(
        {
            "columns": {"address": "keep", "income": "keep"},
            "model": {
                "type": "dp",
                "epsilon": 1.0,
                "dimensions": ["address"],
                "dimension_values": {"address": ["A", "B"]},
                "measures": [
                    {"kind": "count"},
                    {"kind": "mean", "column": "income", "lower": 0, "upper": 1e5},
                ],
            },
        },
        COLUMNS,
    )
    assert isinstance(policy.model, DPModel)
    assert policy.model.measures[1] == Measure("mean", "income", 0, 1e5)
    assert parse_policy(policy.to_json(), COLUMNS) == policy


@pytest.mark.parametrize(
    ("model", "column", "field"),
    [
        ({"epsilon": 0, "measures": [{"kind": "count"}]}, None, "epsilon"),
        ({"epsilon": -1, "measures": [{"kind": "count"}]}, None, "epsilon"),
        ({"epsilon": float("inf"), "measures": [{"kind": "count"}]}, None, "epsilon"),
        ({"epsilon": 1, "measures": []}, None, "model.measures"),
        ({"epsilon": 1, "measures": [{"kind": "sum", "column": "income"}]}, "income", "lower"),
        (
            {"epsilon": 1, "measures": [{"kind": "sum", "column": "income", "lower": 5, "upper": 1}]},
            "income",
            "lower",
        ),
        (
            {"epsilon": 1, "measures": [{"kind": "mean", "column": "address", "lower": 0, "upper": 1}]},
            "address",
            "column",
        ),
        ({"epsilon": 1, "dimensions": ["name"], "measures": [{"kind": "count"}]}, "name", "rule"),
    ],
)
def test_a_bad_dp_model_is_refused(model: dict[str, Any], column: str | None, field: str) -> None:
    error = _error({"columns": {"name": "drop"}, "model": {"type": "dp", **model}})
    assert error.detail == {"column": column, "field": field}


def test_an_unknown_column_type_is_refused() -> None:
    error = _error({"columns": {}}, {"x": "blob"})
    assert error.detail == {"column": "x", "field": "type"}

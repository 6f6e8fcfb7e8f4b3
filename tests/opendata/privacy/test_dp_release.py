"""Differentially private aggregates through OpenDP: shape, ε accounting, refusals, rough accuracy."""

from __future__ import annotations

import statistics
from typing import Any

import pyarrow as pa
import pytest

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy import Measure, dp_aggregate, dp_release, parse_policy

TABLE = pa.table(
    {
        "district": ["East"] * 50 + ["West"] * 30 + ["Elsewhere"] * 5,
        "sex": (["F", "M"] * 43)[:85],
        "age": [20 + i % 60 for i in range(85)],
        "income": [1000.0 + 10 * i for i in range(85)],
    }
)


def test_noisy_counts_come_out_for_every_declared_key_with_epsilon_reported() -> None:
    result = dp_aggregate(
        TABLE,
        dimensions=["district"],
        measures=[Measure("count")],
        epsilon=1.0,
        dimension_values={"district": ["East", "West", "North"]},
    )
    assert result.table.column_names == ["district", "count"]
    assert result.table.column("district").to_pylist() == ["East", "West", "North"]
    assert all(c >= 0 for c in result.table.column("count").to_pylist())
    assert result.epsilon == pytest.approx(1.0)
    assert result.epsilon <= 1.0
    (noise,) = result.measures
    assert (noise.mechanism, noise.scale, noise.sensitivity) == ("discrete Laplace", pytest.approx(1.0), 1)
    assert result.to_json()["measures"][0]["stddev"] == pytest.approx(2**0.5)


def test_noisy_counts_are_centred_on_the_truth() -> None:
    counts = [
        dp_aggregate(
            TABLE,
            dimensions=["district"],
            measures=[Measure("count")],
            epsilon=1.0,
            dimension_values={"district": ["East"]},
        )
        .table.column("count")[0]
        .as_py()
        for _ in range(300)
    ]
    assert abs(statistics.fmean(counts) - 50) < 0.6  # the mean's sd is about 0.08


def test_a_large_epsilon_gives_nearly_exact_sums_and_means_split_across_measures() -> None:
    result = dp_aggregate(
        TABLE,
        dimensions=["district", "sex"],
        measures=[
            Measure("count"),
            Measure("sum", "age", lower=0, upper=100),
            Measure("mean", "income", lower=0.0, upper=2000.0, weight=2),
        ],
        epsilon=400.0,
        dimension_values={"district": ["East", "West"], "sex": ["F", "M"]},
    )
    rows = result.table.to_pylist()
    assert [(r["district"], r["sex"]) for r in rows] == [
        ("East", "F"),
        ("East", "M"),
        ("West", "F"),
        ("West", "M"),
    ]
    east_f = [
        i for i in range(85) if TABLE["district"][i].as_py() == "East" and TABLE["sex"][i].as_py() == "F"
    ]
    assert rows[0]["count"] == pytest.approx(len(east_f), abs=1)
    assert rows[0]["sum_age"] == pytest.approx(sum(TABLE["age"][i].as_py() for i in east_f), abs=10)
    true_mean = statistics.fmean(TABLE["income"][i].as_py() for i in east_f)
    assert rows[0]["mean_income"] == pytest.approx(true_mean, abs=10)
    spent = {m.name: m.epsilon for m in result.measures}
    assert spent == pytest.approx({"count": 100.0, "sum_age": 100.0, "mean_income": 200.0})
    assert result.epsilon == pytest.approx(400.0)
    assert result.measures[1].mechanism == "discrete Laplace" and result.measures[2].mechanism == "Laplace"
    assert result.measures[2].count_scale is not None


def test_more_contributions_per_person_mean_more_noise() -> None:
    def scale(contributions: int) -> float:
        return float(
            dp_aggregate(
                TABLE,
                dimensions=[],
                measures=[Measure("sum", "age", lower=0, upper=100)],
                epsilon=1.0,
                dimension_values=None,
                contributions=contributions,
            )
            .measures[0]
            .scale
        )

    assert scale(3) == pytest.approx(3 * scale(1))
    assert scale(1) == pytest.approx(100.0)


@pytest.mark.parametrize("epsilon", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_an_invalid_epsilon_is_refused(epsilon: Any) -> None:
    with pytest.raises(Invalid) as caught:
        dp_aggregate(
            TABLE, dimensions=[], measures=[Measure("count")], epsilon=epsilon, dimension_values=None
        )
    assert caught.value.detail["field"] == "epsilon"


@pytest.mark.parametrize(
    ("measure", "field"),
    [
        (Measure("sum", "age"), "lower"),
        (Measure("sum", "age", lower=0), "upper"),
        (Measure("mean", "age", lower=10, upper=10), "lower"),
        (Measure("sum", "age", lower=0, upper=float("inf")), "upper"),
        (Measure("count", lower=0, upper=1), "lower"),
        (Measure("sum", "district", lower=0, upper=1), "column"),
        (Measure("sum", "nope", lower=0, upper=1), "column"),
        (Measure("count", weight=0), "weight"),
    ],
)
def test_invalid_bounds_and_columns_are_refused(measure: Measure, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        dp_aggregate(TABLE, dimensions=[], measures=[measure], epsilon=1.0, dimension_values=None)
    assert caught.value.detail["field"] == field


def test_dimension_values_must_be_declared() -> None:
    with pytest.raises(Invalid) as caught:
        dp_aggregate(
            TABLE, dimensions=["district"], measures=[Measure("count")], epsilon=1.0, dimension_values=None
        )
    assert caught.value.detail == {"column": "district", "field": "dimension_values"}
    assert "'district'" in caught.value.message


def test_declared_values_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(Invalid) as caught:
        dp_aggregate(
            TABLE,
            dimensions=["age"],
            measures=[Measure("count")],
            epsilon=1.0,
            dimension_values={"age": ["old"]},
        )
    assert caught.value.detail == {"column": "age", "field": "dimension_values"}


def test_a_count_of_a_column_counts_its_non_null_values() -> None:
    table = pa.table({"g": ["a"] * 10, "x": [1, None] * 5})
    result = dp_aggregate(
        table,
        dimensions=["g"],
        measures=[Measure("count", "x")],
        epsilon=500.0,
        dimension_values={"g": ["a"]},
    )
    assert result.table.column("count_x").to_pylist() == [5]


def test_a_policy_dp_release_groups_by_generalised_dimensions() -> None:
    policy = parse_policy(
        {
            "columns": {
                "district": "keep",
                "sex": "drop",
                "age": {"rule": "generalise", "method": "range", "width": 30, "origin": 20},
                "income": "keep",
            },
            "model": {
                "type": "dp",
                "epsilon": 500.0,
                "dimensions": ["age"],
                "dimension_values": {"age": ["20-49", "50-79"]},
                "measures": [{"kind": "count"}],
            },
        },
        {"district": "string", "sex": "string", "age": "integer", "income": "decimal"},
    )
    result = dp_release(TABLE, policy)
    assert result.table.to_pydict() == {"age": ["20-49", "50-79"], "count": [55, 30]}

"""Risk reports and information loss, including other tools' label formats."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from zhishe.opendata.privacy import Hierarchy, information_loss, risk_report

MARITAL = Hierarchy(
    {
        "Married-civ-spouse": ("Spouse present",),
        "Married-AF-spouse": ("Spouse present",),
        "Divorced": ("Spouse not present",),
        "Never-married": ("Spouse not present",),
        "Widowed": ("Spouse not present",),
    }
)


def test_the_report_counts_classes_risks_and_l() -> None:
    released = pa.table(
        {
            "age": ["30-39"] * 4 + ["40-49"] * 3 + ["50-59"],
            "sex": ["F"] * 4 + ["M"] * 3 + ["M"],
            "diagnosis": ["flu", "flu", "asthma", "flu", "flu", "cold", "asthma", "flu"],
        }
    )
    report = risk_report(released, ["age", "sex"], k=3, sensitive=["diagnosis"], l=2, suppressed=2)
    assert report.equivalence_classes == 3
    assert report.smallest_class == 1
    assert report.share_below_k == pytest.approx(1 / 8)
    assert report.prosecutor_risk_max == 1.0
    assert report.prosecutor_risk_avg == pytest.approx(3 / 8)
    assert report.l_diversity == 1
    assert report.discernibility == 16 + 9 + 1 + 2 * 10
    assert report.suppressed_share == pytest.approx(0.2)
    assert not report.meets_policy
    assert len(report.reasons) == 2
    assert report.to_json()["equivalence_classes"] == 3


def test_a_k_anonymous_release_meets_its_policy() -> None:
    released = pa.table({"age": ["30-39"] * 3 + ["40-49"] * 3, "diagnosis": ["a", "b", "a", "b", "c", "b"]})
    report = risk_report(released, ["age"], k=3, sensitive=["diagnosis"], l=2, max_suppression=0.05)
    assert report.meets_policy and report.reasons == ()
    assert report.l_diversity == 2


def test_too_much_suppression_fails_the_policy() -> None:
    released = pa.table({"age": ["30-39"] * 3})
    report = risk_report(released, ["age"], k=3, suppressed=1, max_suppression=0.05)
    assert not report.meets_policy and "suppressed" in report.reasons[0]


def test_numeric_labels_of_every_tool_are_measured_against_the_domain() -> None:
    original = pa.table({"age": list(range(20, 101))})  # width 80
    released = pa.table(
        {
            "age": [
                "30-39",  # ours, anonypy: 9/80
                "[30-39]",  # 9/80
                "[30, 40[",  # anjana: integers below 40, 9/80
                "[30, 40)",  # 9/80
                "90+",  # 10/80
                ">=80",  # 20/80
                "<25",  # 20..24, 4/80
                "55",  # 0
                "*",  # 1
                "0-200",  # clipped to the domain, 1
            ]
        }
    )
    loss = information_loss(original, released, ["age"], suppressed=0)
    expected = (4 * 9 / 80 + 10 / 80 + 20 / 80 + 4 / 80 + 0 + 1 + 1) / 10
    assert loss.ncp == pytest.approx(expected)


def test_categorical_labels_sets_stars_and_hierarchy_nodes() -> None:
    values = ["Married-civ-spouse", "Married-AF-spouse", "Divorced", "Never-married", "Widowed"]
    original = pa.table({"marital": values})  # 5 values
    released = pa.table(
        {
            "marital": [
                "Divorced",  # 0
                "{Divorced,Widowed}",  # ours: 1/4
                "Widowed,Never-married",  # anonypy: 1/4
                "Spouse present",  # hierarchy node over 2 values: 1/4
                "Spouse not present",  # 3 values: 2/4
            ]
        }
    )
    loss = information_loss(original, released, ["marital"], hierarchies={"marital": MARITAL}, suppressed=1)
    cells = 0 + 0.25 + 0.25 + 0.25 + 0.5
    assert loss.ncp == pytest.approx((cells + 1) / 6)
    assert loss.discernibility == 5 * 1 + 1 * 6
    assert loss.classes == 5


def test_date_labels_are_read_as_iso_periods_and_intervals() -> None:
    start = dt.date(2026, 1, 1)
    original = pa.table({"day": pa.array([start, dt.date(2026, 12, 31)], pa.date32())})  # width 364 days
    released = pa.table({"day": ["2026-03", "2026-03-01/2026-03-10"]})
    loss = information_loss(original, released, ["day"])
    assert loss.ncp == pytest.approx((30 / 364 + 9 / 364) / 2)


def test_a_null_label_costs_nothing_only_when_the_original_had_nulls() -> None:
    released = pa.table({"x": pa.array([None, "a"], pa.string())})
    with_nulls = pa.table({"x": ["a", None, "b"]})
    without = pa.table({"x": ["a", "b", "c"]})
    assert information_loss(with_nulls, released, ["x"], suppressed=0).ncp == 0.0
    assert information_loss(without, released, ["x"], suppressed=0).ncp == pytest.approx(0.5)


def test_an_unreadable_label_is_an_error() -> None:
    original = pa.table({"age": [1, 2, 3]})
    with pytest.raises(ValueError, match="cannot read"):
        information_loss(original, pa.table({"age": ["about forty"]}), ["age"])

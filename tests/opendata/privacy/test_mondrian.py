"""k-anonymity by Mondrian: every release is checked k-anonymous (and l-diverse) with pycanon."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycanon_check import assert_k_anonymous

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy import Anonymised, Hierarchy, anonymise, information_loss, parse_policy

KEY = b"k" * 32


def _types(table: pa.Table) -> dict[str, str]:
    out = {}
    for f in table.schema:
        if pa.types.is_integer(f.type):
            out[f.name] = "integer"
        elif pa.types.is_floating(f.type):
            out[f.name] = "decimal"
        elif pa.types.is_date(f.type):
            out[f.name] = "date"
        elif pa.types.is_boolean(f.type):
            out[f.name] = "boolean"
        else:
            out[f.name] = "string"
    return out


def _release(
    table: pa.Table,
    qis: list[str],
    k: int,
    *,
    rules: dict[str, Any] | None = None,
    sensitive: list[str] | None = None,
    l: int | None = None,  # noqa: E741
    hierarchies: dict[str, Hierarchy] | None = None,
) -> Anonymised:
    columns = {c: "keep" for c in table.column_names} | (rules or {})
    model: dict[str, Any] = {"type": "k_anonymity", "k": k, "quasi_identifiers": qis}
    if sensitive:
        model["sensitive"] = sensitive
    if l is not None:
        model["l"] = l
    policy = parse_policy({"columns": columns, "model": model}, _types(table))
    result = anonymise(table, policy, key=KEY, hierarchies=hierarchies)
    assert result.table.num_rows + result.suppressed == table.num_rows
    assert_k_anonymous(result.table, qis, k, sensitive or (), l)
    return result


def _neighbourhood(seed: int = 3) -> pa.Table:
    """40 ordinary residents of buildings A and B, and one 97-year-old, the only one in building C."""
    rng = random.Random(seed)
    ages = [rng.randint(30, 50) for _ in range(40)] + [97]
    buildings = [rng.choice("AB") for _ in range(40)] + ["C"]
    return pa.table(
        {"id": [f"r{i}" for i in range(41)], "age": ages, "building": buildings, "visits": list(range(41))}
    )


def test_a_rare_combination_is_generalised_until_it_meets_k() -> None:
    table = _neighbourhood()
    result = _release(table, ["age", "building"], 5, rules={"id": "pseudonymise"})
    out = result.table
    assert result.suppressed == 0
    oldest = out.filter(pa.compute.equal(out.column("visits"), 40)).to_pylist()[0]
    assert oldest["age"] != "97" and oldest["age"].endswith("-97")
    assert oldest["building"] != "C" and "C" in oldest["building"]
    assert result.report is not None and result.report.meets_policy
    assert result.report.smallest_class >= 5


def test_the_release_keeps_column_and_row_order_and_makes_qis_strings() -> None:
    table = _neighbourhood()
    result = _release(table, ["age", "building"], 5, rules={"id": "drop"})
    assert result.table.column_names == ["age", "building", "visits"]
    assert result.table.schema.field("age").type == pa.string()
    assert result.table.column("visits").to_pylist() == list(range(41))


def test_l_diversity_gives_every_class_l_distinct_sensitive_values() -> None:
    rng = random.Random(5)
    n = 300
    table = pa.table(
        {
            "age": [rng.randint(18, 90) for _ in range(n)],
            "district": [rng.choice(["East", "West", "North", "South"]) for _ in range(n)],
            "diagnosis": [rng.choice(["flu", "flu", "flu", "asthma", "diabetes"]) for _ in range(n)],
        }
    )
    result = _release(table, ["age", "district"], 4, sensitive=["diagnosis"], l=3)
    assert result.report is not None and result.report.l_diversity is not None
    assert result.report.l_diversity >= 3


def test_a_hierarchy_generalises_a_kept_category_to_common_ancestors() -> None:
    tree = Hierarchy(
        {
            "A1": ("A", "East"),
            "A2": ("A", "East"),
            "B1": ("B", "East"),
            "C1": ("C", "West"),
            "C2": ("C", "West"),
        },
        levels=("building", "district"),
    )
    rng = random.Random(7)
    flats = ["A1"] * 6 + ["A2"] * 2 + ["B1"] * 3 + ["C1"] * 7 + ["C2"]
    table = pa.table({"flat": flats, "age": [rng.randint(20, 80) for _ in flats]})
    result = _release(table, ["flat", "age"], 3, hierarchies={"flat": tree})
    labels = set(result.table.column("flat").to_pylist())
    assert labels <= {"A1", "A2", "B1", "C1", "C2", "A", "B", "C", "East", "West", "*"}
    assert not any(label.startswith("{") for label in labels)


def test_a_range_generalised_qi_is_merged_as_categories_in_bin_order() -> None:
    rng = random.Random(11)
    n = 120
    table = pa.table(
        {"age": [rng.randint(0, 99) for _ in range(n)], "sex": [rng.choice("FM") for _ in range(n)]}
    )
    rule = {"rule": "generalise", "method": "range", "width": 10, "top": 80}
    result = _release(table, ["age", "sex"], 6, rules={"age": rule})
    for label in result.table.column("age").to_pylist():
        assert label == "*" or label.startswith("{") or label == "80+" or "-" in label


def test_nulls_in_quasi_identifiers_are_values_of_their_own() -> None:
    rng = random.Random(13)
    n = 80
    table = pa.table(
        {
            "age": [None if i % 9 == 0 else rng.randint(20, 60) for i in range(n)],
            "district": [None if i % 7 == 0 else rng.choice(["E", "W"]) for i in range(n)],
        }
    )
    _release(table, ["age", "district"], 4)


def test_dates_are_generalised_to_iso_intervals() -> None:
    rng = random.Random(17)
    n = 60
    days = [dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 20000)) for _ in range(n)]
    table = pa.table({"born": pa.array(days, pa.date32())})
    result = _release(table, ["born"], 5)
    for label in result.table.column("born").to_pylist():
        start, _, end = label.partition("/")
        assert dt.date.fromisoformat(start) <= dt.date.fromisoformat(end or start)


def test_a_pseudonymised_or_suppressed_qi_still_gives_a_k_anonymous_release() -> None:
    table = _neighbourhood()
    result = _release(
        table, ["id", "age", "building"], 5, rules={"id": "pseudonymise", "building": "suppress"}
    )
    assert set(result.table.column("building").to_pylist()) == {None}
    assert result.report is not None and result.report.ncp_by_column["building"] == 1.0


def test_a_table_smaller_than_k_is_suppressed_and_fails_its_policy() -> None:
    table = pa.table({"age": [30, 40, 50]})
    result = _release(table, ["age"], 5)
    assert (result.table.num_rows, result.suppressed) == (0, 3)
    assert result.table.schema.field("age").type == pa.string()
    assert result.report is not None and not result.report.meets_policy
    assert "suppressed" in result.report.reasons[0]


def test_a_table_without_l_distinct_sensitive_values_is_suppressed() -> None:
    table = pa.table({"age": list(range(20)), "diagnosis": ["flu"] * 20})
    result = _release(table, ["age"], 2, sensitive=["diagnosis"], l=2)
    assert result.suppressed == 20


def test_the_report_agrees_with_information_loss_measured_from_the_outside() -> None:
    table = _neighbourhood()
    result = _release(table, ["age", "building"], 4)
    assert result.report is not None
    loss = information_loss(table, result.table, ["age", "building"])
    assert loss.ncp == pytest.approx(result.report.ncp)
    assert loss.discernibility == result.report.discernibility
    assert loss.classes == result.report.equivalence_classes


def test_a_dp_policy_is_refused_by_anonymise() -> None:
    table = pa.table({"age": [1, 2]})
    policy = parse_policy(
        {"columns": {"age": "keep"}, "model": {"type": "dp", "epsilon": 1, "measures": [{"kind": "count"}]}},
        {"age": "integer"},
    )
    with pytest.raises(Invalid):
        anonymise(table, policy, key=None)


def test_without_a_model_only_the_rules_apply() -> None:
    table = pa.table({"age": [1, 2], "name": ["a", "b"]})
    policy = parse_policy({"columns": {"age": "keep", "name": "drop"}}, _types(table))
    result = anonymise(table, policy, key=None)
    assert result.table.to_pydict() == {"age": [1, 2]}
    assert result.report is None


def test_a_larger_table_gets_many_small_classes_and_little_loss() -> None:
    rng = random.Random(19)
    n = 5000
    table = pa.table(
        {
            "age": [rng.randint(0, 99) for _ in range(n)],
            "sex": [rng.choice("FM") for _ in range(n)],
            "district": [f"d{rng.randint(0, 15)}" for _ in range(n)],
            "income": [round(rng.lognormvariate(8, 0.7), 2) for _ in range(n)],
        }
    )
    result = _release(table, ["age", "sex", "district", "income"], 5)
    assert result.report is not None
    assert result.report.equivalence_classes > n // 20
    assert result.report.ncp is not None and result.report.ncp < 0.5


@st.composite
def _tables(draw: st.DrawFn) -> tuple[pa.Table, list[str], int]:
    n = draw(st.integers(0, 40))
    kinds = draw(st.lists(st.sampled_from(["int", "str", "float"]), min_size=1, max_size=3))
    columns: dict[str, pa.Array] = {}
    for i, kind in enumerate(kinds):
        if kind == "int":
            values: list[Any] = draw(
                st.lists(st.one_of(st.none(), st.integers(-5, 30)), min_size=n, max_size=n)
            )
            columns[f"q{i}"] = pa.array(values, pa.int64())
        elif kind == "float":
            values = draw(
                st.lists(st.one_of(st.none(), st.floats(-10, 10, allow_nan=False)), min_size=n, max_size=n)
            )
            columns[f"q{i}"] = pa.array(values, pa.float64())
        else:
            values = draw(st.lists(st.one_of(st.none(), st.sampled_from("abcdefg")), min_size=n, max_size=n))
            columns[f"q{i}"] = pa.array(values, pa.string())
    columns["s"] = pa.array(draw(st.lists(st.sampled_from("xyz"), min_size=n, max_size=n)), pa.string())
    return pa.table(columns), [c for c in columns if c != "s"], draw(st.integers(2, 6))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables(), st.sampled_from([None, 2]))
def test_any_small_table_comes_out_k_anonymous_with_every_row_accounted_for(
    case: tuple[pa.Table, list[str], int],
    l: int | None,  # noqa: E741
) -> None:
    table, qis, k = case
    result = _release(table, qis, k, sensitive=["s"], l=l)
    assert result.report is not None
    if result.table.num_rows:
        assert result.report.smallest_class >= k
    outside = information_loss(table, result.table, qis, suppressed=result.suppressed)
    assert outside.ncp == pytest.approx(result.report.ncp)
    assert outside.discernibility == result.report.discernibility


FLATS = Hierarchy(
    {f"{b}{i}": (b, "North" if b in "AB" else "South") for b in "ABCD" for i in range(3)},
    levels=("building", "side"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 99), st.sampled_from(sorted(FLATS.values))), max_size=50),
    st.integers(2, 5),
    st.booleans(),
    st.sampled_from([None, "building"]),
)
def test_rules_and_hierarchies_under_mondrian_stay_k_anonymous_and_measured_alike(
    rows: list[tuple[int, str]], k: int, banded: bool, level: str | None
) -> None:
    table = pa.table(
        {"age": [r[0] for r in rows], "flat": [r[1] for r in rows]},
        schema=pa.schema([("age", pa.int64()), ("flat", pa.string())]),
    )
    rules: dict[str, Any] = {}
    if banded:
        rules["age"] = {"rule": "generalise", "method": "range", "width": 10, "top": 80}
    if level:
        rules["flat"] = {"rule": "generalise", "method": "hierarchy", "level": level}
    result = _release(table, ["age", "flat"], k, rules=rules, hierarchies={"flat": FLATS})
    assert result.report is not None
    outside = information_loss(table, result.table, ["age", "flat"], hierarchies={"flat": FLATS})
    assert outside.ncp == pytest.approx(result.report.ncp)

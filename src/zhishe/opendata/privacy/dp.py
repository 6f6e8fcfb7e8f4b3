"""Differentially private aggregates with OpenDP: noisy counts, sums and means by public dimensions.

How a release is computed:

- **Groups** are the cartesian product of the declared public values of each dimension
  (`dimension_values`), in declared order. They are required: taking the groups from the data
  would publish which combinations occur, which is itself not differentially private. Rows
  whose values are outside the declared ones are not counted.
- **Budget.** The release's ε is split across the measures in proportion to their `weight`
  (equal by default); sequential composition makes the total the sum of the parts. A mean
  spends half of its share on a noisy count of the column's non-null values and half on a
  noisy clamped sum, and publishes their ratio clamped into the bounds.
- **Privacy unit**: one row, or `contributions` rows when a person may have several.
- **Mechanisms.** Counts are OpenDP's `make_count_by_categories` followed by the (discrete)
  Laplace mechanism. Sums clamp each value into the declared [`lower`, `upper`]; the vector
  of group sums then has L1 sensitivity ``contributions * max(|lower|, |upper|)`` (one row
  changes one group's sum by at most that much) and gets OpenDP's Laplace mechanism, whose
  privacy map gives the ε reported. Integer columns with whole bounds are summed exactly and
  get integer noise; decimal sums are exactly rounded (`math.fsum`).
- **Post-processing** (free of privacy cost): counts are clamped at 0, means into the bounds;
  a mean whose noisy count is below 1 is null.

Keeping a total budget per dataset is the caller's job; `DPResult.epsilon` is what this release spent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from zhishe.core.errors import Invalid

__all__ = [
    "MAX_GROUPS",
    "DPResult",
    "Measure",
    "MeasureNoise",
    "check_epsilon",
    "check_measure",
    "dp_aggregate",
]

#: The largest number of groups (product of the dimensions' value counts) one release may have.
MAX_GROUPS = 1_000_000

MeasureKind = Literal["count", "sum", "mean"]


@dataclass(frozen=True, slots=True)
class Measure:
    """One aggregate of a DP release: a count of rows (or of a column's non-null values), a sum or a mean."""

    kind: MeasureKind
    column: str | None = None
    #: Clamping bounds, required for sums and means.
    lower: float | None = None
    upper: float | None = None
    #: The measure's share of the release's ε, relative to the other measures' weights.
    weight: float = 1.0
    #: The output column's name; default "count", "count_<column>", "sum_<column>", "mean_<column>".
    name: str | None = None

    @property
    def output_name(self) -> str:
        """The name of this measure's column in the released table."""
        if self.name:
            return self.name
        return self.kind if self.column is None else f"{self.kind}_{self.column}"

    def to_json(self) -> dict[str, Any]:
        """The measure as JSON, without unset fields."""
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("column", "lower", "upper", "name"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.weight != 1.0:
            out["weight"] = self.weight
        return out


@dataclass(frozen=True, slots=True)
class MeasureNoise:
    """How much noise one measure got, and the ε it spent."""

    name: str
    kind: MeasureKind
    column: str | None
    epsilon: float
    mechanism: str
    #: Laplace scale of the noise on the sum (sum, mean) or on the count (count).
    scale: float
    #: L1 sensitivity the scale was calibrated to.
    sensitivity: float
    #: For a mean: the Laplace scale of the noise on its count.
    count_scale: float | None = None

    @property
    def stddev(self) -> float:
        """Standard deviation of the noise added to each value (of the sum, for a mean)."""
        return self.scale * math.sqrt(2)

    def to_json(self) -> dict[str, Any]:
        """The description as JSON."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "column": self.column,
            "epsilon": self.epsilon,
            "mechanism": self.mechanism,
            "scale": self.scale,
            "sensitivity": self.sensitivity,
            "stddev": self.stddev,
        }
        if self.count_scale is not None:
            out["count_scale"] = self.count_scale
        return out


@dataclass(frozen=True, slots=True)
class DPResult:
    """A DP release: one row per group, the ε spent, and the noise of each measure."""

    table: pa.Table
    epsilon: float
    measures: tuple[MeasureNoise, ...]
    groups: int

    def to_json(self) -> dict[str, Any]:
        """What was spent and how (not the table)."""
        return {
            "epsilon": self.epsilon,
            "groups": self.groups,
            "measures": [m.to_json() for m in self.measures],
        }


def _bad(message: str, column: str | None, field_name: str) -> Invalid:
    return Invalid(message, detail={"column": column, "field": field_name})


def check_epsilon(epsilon: object) -> float:
    """ε as a float; `Invalid` unless it is a finite number above 0."""
    if (
        isinstance(epsilon, bool)
        or not isinstance(epsilon, int | float)
        or not math.isfinite(epsilon)
        or epsilon <= 0
    ):
        raise _bad(f"epsilon must be a finite number above 0, not {epsilon!r}.", None, "epsilon")
    return float(epsilon)


def check_measure(measure: Measure) -> None:
    """Raise `Invalid` when a measure is malformed: unknown kind, missing column or bounds, bad weight."""
    col = measure.column
    if measure.kind not in ("count", "sum", "mean"):
        raise _bad(f"Measure kind {measure.kind!r} is not one of count, sum, mean.", col, "kind")
    w = measure.weight
    if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
        raise _bad(f"Measure {measure.output_name}: weight must be a number above 0.", col, "weight")
    if measure.kind == "count":
        if measure.lower is not None or measure.upper is not None:
            raise _bad(f"Measure {measure.output_name}: a count takes no bounds.", col, "lower")
        return
    if not col:
        raise _bad(f"A {measure.kind} needs a column.", None, "column")
    for key in ("lower", "upper"):
        v = getattr(measure, key)
        if v is None:
            raise _bad(
                f"Column '{col}': a {measure.kind} needs declared bounds; '{key}' is missing.", col, key
            )
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _bad(f"Column '{col}': {key} must be a finite number, not {v!r}.", col, key)
    assert measure.lower is not None and measure.upper is not None
    if measure.lower >= measure.upper:
        raise _bad(
            f"Column '{col}': lower ({measure.lower}) must be below upper ({measure.upper}).", col, "lower"
        )


def _dp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def _calibrated(build: Callable[[float], Any], d_in: float, epsilon: float) -> tuple[Any, float, float]:
    """The mechanism whose OpenDP privacy map at `d_in` is at most `epsilon`; with its scale and ε."""
    scale = d_in / epsilon
    for _ in range(64):
        meas = build(scale)
        spent = float(meas.map(d_in))
        if spent <= epsilon:
            return meas, scale, spent
        scale *= 1 + 1e-9 + (spent - epsilon) / epsilon
    raise RuntimeError("could not calibrate the noise scale")  # pragma: no cover - map is monotone


def _group_ids(
    table: pa.Table, dimensions: Sequence[str], values: Mapping[str, Sequence[Any]]
) -> tuple[npt.NDArray[np.int64], list[pa.Array]]:
    """Each row's group number (-1 when outside the declared values) and each dimension's typed values."""
    gid = np.zeros(table.num_rows, dtype=np.int64)
    typed: list[pa.Array] = []
    stride = 1
    for dim in reversed(dimensions):
        column = table.column(dim)
        try:
            declared = (
                pa.array(list(values[dim])).cast(column.type) if values[dim] else pa.array([], column.type)
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise _bad(
                f"Dimension '{dim}': a declared value is not a {column.type}: {exc}.", dim, "dimension_values"
            ) from exc
        if len(set(declared.to_pylist())) != len(declared):
            raise _bad(f"Dimension '{dim}': dimension_values repeats a value.", dim, "dimension_values")
        typed.insert(0, declared)
        idx = pc.index_in(column, value_set=declared, skip_nulls=False)
        arr = (
            idx.to_numpy(zero_copy_only=False)
            if isinstance(idx, pa.Array)
            else idx.combine_chunks().to_numpy(zero_copy_only=False)
        )
        codes = np.where(np.isnan(arr.astype(np.float64)), -1, np.nan_to_num(arr.astype(np.float64))).astype(
            np.int64
        )
        gid = np.where((gid < 0) | (codes < 0), -1, gid + codes * stride)
        stride *= len(declared)
    return gid, typed


def _values(table: pa.Table, column: str) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_], bool]:
    """A numeric column as numpy (nulls as 0), its validity, and whether it is an integer column."""
    col = table.column(column).combine_chunks()
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)):
        raise _bad(
            f"Column '{column}': only integer and decimal columns can be summed, not {col.type}.",
            column,
            "column",
        )
    integer = pa.types.is_integer(col.type)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    filled = col.fill_null(0).to_numpy(zero_copy_only=False)
    if not integer:
        filled = filled.astype(np.float64)
        valid &= ~np.isnan(filled)
    return (filled.astype(np.int64) if integer else filled), valid, integer


def _noisy_counts(
    gid: npt.NDArray[np.int64], groups: int, epsilon: float, contributions: int
) -> tuple[npt.NDArray[np.int64], float, float]:
    dp = _dp()
    counter = dp.t.make_count_by_categories(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.symmetric_distance(),
        categories=list(range(groups)),
        null_category=False,
        TOA="i64",
    )
    meas, scale, spent = _calibrated(lambda s: counter >> dp.m.then_laplace(scale=s), contributions, epsilon)
    return np.asarray(meas(gid.tolist()), dtype=np.int64), scale, spent


def _noisy_sums(
    gid: npt.NDArray[np.int64],
    values: npt.NDArray[Any],
    integer: bool,
    groups: int,
    measure: Measure,
    epsilon: float,
    contributions: int,
) -> tuple[npt.NDArray[Any], float, float, float]:
    assert measure.lower is not None and measure.upper is not None
    dp = _dp()
    lo, hi = measure.lower, measure.upper
    exact_int = integer and float(lo).is_integer() and float(hi).is_integer()
    keep = gid >= 0
    g = gid[keep]
    if exact_int:
        v = np.clip(values[keep], int(lo), int(hi)).astype(np.int64)
        sums: npt.NDArray[Any] = np.zeros(groups, dtype=np.int64)
        np.add.at(sums, g, v)
        sensitivity: float = contributions * max(abs(int(lo)), abs(int(hi)))
        domain = dp.vector_domain(dp.atom_domain(T="i64"))
        metric = dp.l1_distance(T="i64")
        meas, scale, spent = _calibrated(
            lambda s: dp.m.make_laplace(domain, metric, scale=s), int(sensitivity), epsilon
        )
        return np.asarray(meas(sums.tolist()), dtype=np.int64), scale, spent, sensitivity
    v = np.clip(values[keep].astype(np.float64), lo, hi)
    order = np.argsort(g, kind="stable")
    g_sorted, v_sorted = g[order], v[order]
    bounds = np.searchsorted(g_sorted, np.arange(groups + 1))
    fsums = [math.fsum(v_sorted[bounds[i] : bounds[i + 1]]) for i in range(groups)]
    sensitivity = contributions * max(abs(lo), abs(hi))
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    metric = dp.l1_distance(T=float)
    meas, scale, spent = _calibrated(
        lambda s: dp.m.make_laplace(domain, metric, scale=s), sensitivity, epsilon
    )
    return np.asarray(meas(fsums), dtype=np.float64), scale, spent, sensitivity


def dp_aggregate(
    table: pa.Table,
    *,
    dimensions: Sequence[str],
    measures: Sequence[Measure],
    epsilon: float,
    dimension_values: Mapping[str, Sequence[Any]] | None,
    contributions: int = 1,
) -> DPResult:
    """Noisy counts, sums and means of `table` by `dimensions`, spending `epsilon` in all (see the module doc)."""
    epsilon = check_epsilon(epsilon)
    if not measures:
        raise _bad("A DP release needs at least one measure.", None, "measures")
    if isinstance(contributions, bool) or not isinstance(contributions, int) or contributions < 1:
        raise _bad("contributions must be a whole number of at least 1.", None, "contributions")
    names = [m.output_name for m in measures]
    if len(set(names)) != len(names) or set(names) & set(dimensions):
        raise _bad("Two output columns of the release have the same name.", None, "measures")
    for m in measures:
        check_measure(m)
        if m.column is not None and m.column not in table.column_names:
            raise _bad(f"The measure column '{m.column}' is not in the table.", m.column, "column")
    values = dict(dimension_values or {})
    for dim in dimensions:
        if dim not in table.column_names:
            raise _bad(f"The dimension '{dim}' is not in the table.", dim, "dimensions")
        if dim in values and not values[dim]:
            raise _bad(f"Dimension '{dim}': dimension_values is empty.", dim, "dimension_values")
        if dim not in values:
            raise _bad(
                f"Dimension '{dim}' needs its public values declared: taking them from the data would "
                "publish which values occur.",
                dim,
                "dimension_values",
            )
    groups = math.prod(len(values[d]) for d in dimensions)
    if groups > MAX_GROUPS:
        raise _bad(
            f"The release would have {groups} groups; at most {MAX_GROUPS} are allowed.", None, "dimensions"
        )
    gid, typed = _group_ids(table, dimensions, values)
    total_weight = sum(m.weight for m in measures)
    out_columns: dict[str, pa.Array] = {}
    keys = list(itertools.product(*[range(len(t)) for t in typed]))
    for j, dim in enumerate(dimensions):
        out_columns[dim] = typed[j].take(pa.array([key[j] for key in keys], pa.int64())) if keys else typed[j]
    noises: list[MeasureNoise] = []
    spent_total = 0.0
    for m in measures:
        share = epsilon * m.weight / total_weight
        if m.kind == "count":
            g = gid if m.column is None else np.where(table.column(m.column).is_valid().to_numpy(), gid, -1)
            counts, scale, spent = _noisy_counts(g, groups, share, contributions)
            out_columns[m.output_name] = pa.array(np.maximum(counts, 0), pa.int64())
            noises.append(
                MeasureNoise(m.output_name, m.kind, m.column, spent, "discrete Laplace", scale, contributions)
            )
            spent_total += spent
            continue
        assert m.column is not None and m.lower is not None and m.upper is not None
        vals, valid, integer = _values(table, m.column)
        g = np.where(valid, gid, -1)
        part = share / 2 if m.kind == "mean" else share
        sums, scale, spent, sensitivity = _noisy_sums(g, vals, integer, groups, m, part, contributions)
        mechanism = "discrete Laplace" if sums.dtype == np.int64 else "Laplace"
        if m.kind == "sum":
            out_columns[m.output_name] = pa.array(sums)
            noises.append(MeasureNoise(m.output_name, m.kind, m.column, spent, mechanism, scale, sensitivity))
            spent_total += spent
            continue
        counts, count_scale, count_spent = _noisy_counts(g, groups, part, contributions)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.clip(sums.astype(np.float64) / counts, m.lower, m.upper)
        out_columns[m.output_name] = pa.array(means, pa.float64(), mask=counts < 1)
        noises.append(
            MeasureNoise(
                m.output_name,
                m.kind,
                m.column,
                spent + count_spent,
                mechanism,
                scale,
                sensitivity,
                count_scale,
            )
        )
        spent_total += spent + count_spent
    return DPResult(pa.table(out_columns), spent_total, tuple(noises), groups)

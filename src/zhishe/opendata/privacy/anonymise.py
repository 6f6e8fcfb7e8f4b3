"""Turn an internal table into a release: column rules, then k-anonymity by Mondrian, then the report.

The release keeps the table's column order without the dropped columns, and its row order
without the suppressed rows. Quasi-identifiers and generalised columns become strings (see
`qi` for the labels). Quasi-identifiers that keep their raw numbers or dates are generalised by
Mondrian to ranges; a quasi-identifier with a generalise rule is generalised by its rule first
and then treated as a category in its natural order (bins by bound, hierarchy nodes by tree).

Suppression: Mondrian places every row in a class of at least k rows, so rows are suppressed
only when the table as a whole cannot meet the model (fewer than k rows, or fewer than l
distinct values of a sensitive column): then every row is, and the report says that the
release does not meet its policy whenever more than `max_suppression` of the rows went.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy.dp import DPResult, dp_aggregate
from zhishe.opendata.privacy.hierarchy import Hierarchy
from zhishe.opendata.privacy.mondrian import partition
from zhishe.opendata.privacy.policy import DPModel, KAnonymity, Policy
from zhishe.opendata.privacy.qi import QuasiIdentifier, encode
from zhishe.opendata.privacy.risk import RiskReport, assemble_report, column_penalty
from zhishe.opendata.privacy.rules import Transformed, check_columns, transform_column

__all__ = ["Anonymised", "anonymise", "dp_release"]


@dataclass(frozen=True, slots=True)
class Anonymised:
    """A release: the table, how many rows were suppressed, and its risk report (None without a model)."""

    table: pa.Table
    suppressed: int
    report: RiskReport | None


def _sensitive_codes(arr: pa.Array) -> npt.NDArray[np.int32]:
    encoded = arr.dictionary_encode()
    n = len(encoded.dictionary)
    codes: npt.NDArray[np.int32] = (
        encoded.indices.fill_null(n).to_numpy(zero_copy_only=False).astype(np.int32)
    )
    return codes


def _partition_labels(
    qi: QuasiIdentifier,
    perm: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    part_of_position: npt.NDArray[np.int64],
) -> tuple[list[str | None], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """For one quasi-identifier: the distinct labels, each partition's label index and its NCP."""
    codes = qi.dimension.codes.astype(np.int64)[perm]
    lo = np.minimum.reduceat(codes, starts)
    hi = np.maximum.reduceat(codes, starts)
    sets: dict[int, tuple[int, ...]] = {}
    mixed = lo != hi
    if qi.kind == "category" and mixed.any():
        card = qi.dimension.cardinality
        pos = mixed[part_of_position]
        pairs = np.unique(part_of_position[pos] * card + codes[pos])
        parts, members = pairs // card, (pairs % card).tolist()
        cuts = [0, *(np.flatnonzero(np.diff(parts)) + 1).tolist(), len(pairs)]
        for a, b in itertools.pairwise(cuts):
            sets[int(parts[a])] = tuple(members[a:b])
    return qi.classes(lo, hi, sets)


def _trees(
    policy: Policy, hierarchies: Mapping[str, Hierarchy] | None, names: tuple[str, ...]
) -> dict[str, Hierarchy]:
    """Each quasi-identifier's hierarchy: its hierarchy rule's, or for a kept column the one named after it."""
    trees: dict[str, Hierarchy] = {}
    for name in names:
        rule = policy.columns[name]
        if rule.method == "hierarchy":
            tree_name = rule.hierarchy or name
        elif rule.kind == "keep":
            tree_name = name
        else:
            continue
        if hierarchies and tree_name in hierarchies:
            trees[name] = hierarchies[tree_name]
    return trees


def anonymise(
    table: pa.Table,
    policy: Policy,
    *,
    key: bytes | None,
    hierarchies: Mapping[str, Hierarchy] | None = None,
) -> Anonymised:
    """Apply the policy's column rules and its k-anonymity model to `table` (see the module doc).

    `key` is the pseudonymisation key (needed when a column is pseudonymised; never stored in
    the output). `hierarchies` are looked up by a hierarchy rule's name, and by column name for
    quasi-identifiers kept as they are (they order and generalise the column's categories).
    """
    model = policy.model
    if isinstance(model, DPModel):
        raise Invalid(
            "The policy's model is differential privacy: release aggregates with dp_release.",
            detail={"column": None, "field": "model.type"},
        )
    check_columns(table, policy)
    names = policy.output_columns(table.column_names)
    done: dict[str, Transformed] = {}
    for name in names:
        arr = table.column(name).combine_chunks()
        done[name] = transform_column(name, arr, policy.columns[name], key=key, hierarchies=hierarchies)
    if not isinstance(model, KAnonymity):
        return Anonymised(pa.table({n: done[n].array for n in names}), 0, None)
    qis = model.quasi_identifiers
    trees = _trees(policy, hierarchies, qis)
    encoded = [encode(q, done[q], None if done[q].hierarchy else trees.get(q)) for q in qis]
    sensitive = [_sensitive_codes(done[s].array) for s in model.sensitive]
    perm, starts = partition([e.dimension for e in encoded], model.k, sensitive=sensitive, l=model.l)
    n = table.num_rows
    columns: dict[str, pa.Array] = {}
    cells: dict[str, float] = {}
    if len(starts):
        sizes = np.diff(np.append(starts, n))
        part_of_position = np.repeat(np.arange(len(starts)), sizes)
        part_of_row = np.empty(n, dtype=np.int64)
        part_of_row[perm] = part_of_position
        for qi in encoded:
            labels, index, penalty = _partition_labels(qi, perm, starts, part_of_position)
            known = np.asarray([label is not None for label in labels])
            row_index = index[part_of_row]
            dictionary = pa.array([label or "" for label in labels], pa.string())
            columns[qi.name] = dictionary.take(pa.array(row_index, mask=~known[row_index]))
            cells[qi.name] = float(penalty @ sizes)
        suppressed = 0
        out = pa.table({name: columns.get(name, done[name].array) for name in names})
    else:
        suppressed = n
        out = pa.table({name: done[name].array.slice(0, 0) for name in names})
        out = out.cast(
            pa.schema([pa.field(q, pa.string()) if q in qis else out.schema.field(q) for q in names])
        )
    # The NCP of kept and pseudonymised quasi-identifiers is known from the partitions; the others'
    # (generalised by a rule, or suppressed) is read back from their labels against the raw values.
    by_column: dict[str, float] = {}
    for q in qis:
        if policy.columns[q].kind in ("keep", "pseudonymise") or not out.num_rows:
            q_cells = cells.get(q, 0.0)
        else:
            q_cells = column_penalty(table.column(q), out.column(q), trees.get(q))
        by_column[q] = (q_cells + suppressed) / n if n else 0.0
    report = assemble_report(
        out,
        qis,
        k=model.k,
        sensitive=model.sensitive,
        l=model.l,
        suppressed=suppressed,
        max_suppression=model.max_suppression,
        ncp_by_column=by_column,
    )
    return Anonymised(out, suppressed, report)


def dp_release(
    table: pa.Table,
    policy: Policy,
    *,
    key: bytes | None = None,
    hierarchies: Mapping[str, Hierarchy] | None = None,
) -> DPResult:
    """The DP aggregates a policy with a `dp` model asks for (see `dp.dp_aggregate`).

    Dimension columns go through their rules first, so a dimension generalised to bands is
    grouped by its band labels (the declared values are then those labels); measures are
    aggregated from their raw values.
    """
    model = policy.model
    if not isinstance(model, DPModel):
        raise Invalid(
            "The policy's model is not differential privacy: release the table with anonymise.",
            detail={"column": None, "field": "model.type"},
        )
    columns: dict[str, pa.Array] = {}
    for name in table.column_names:
        arr = table.column(name).combine_chunks()
        rule = policy.columns.get(name)
        if name in model.dimensions and rule is not None:
            arr = transform_column(name, arr, rule, key=key, hierarchies=hierarchies).array
        columns[name] = arr
    return dp_aggregate(
        pa.table(columns),
        dimensions=model.dimensions,
        measures=model.measures,
        epsilon=model.epsilon,
        dimension_values=model.dimension_values,
        contributions=model.contributions,
    )

"""Column rules applied to an Arrow table: keep, drop, pseudonymise, generalise, suppress.

Labels of generalised values (the column becomes a string column):

- range, integer column: ``"60-64"`` (both ends included); decimal column: ``"[60, 65)"``;
  bottom-coded ``"<20"``; top-coded ``"90+"`` (the threshold itself is included in the top bin).
- topcode / bottomcode alone: ``"90+"`` / ``"<18"``; other values are written as they are.
- date: ``"2026-03-15"`` (datetime to day), ``"2026-03"`` (month), ``"2026"`` (year);
  datetimes are truncated in the rule's time zone (UTC by default).
- hierarchy: the value's ancestor at the rule's level.

Pseudonyms are ``"p_"`` plus the first 16 hex digits of HMAC-SHA256(key, value as text): the same
value and key give the same token in every release; another key gives another token; null stays null.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy.hierarchy import Hierarchy
from zhishe.opendata.privacy.policy import Policy, Rule

__all__ = [
    "MIN_KEY_BYTES",
    "Transformed",
    "apply_rules",
    "check_columns",
    "format_number",
    "pseudonym",
    "transform_column",
]

#: The shortest pseudonymisation key accepted.
MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class Transformed:
    """One column after its rule, with what Mondrian needs to order and generalise it further."""

    array: pa.Array
    #: Per-row sort key of generalised values (a bin's lower bound), so bins keep their natural order.
    order: npt.NDArray[np.float64] | None = None
    #: The tree above the released values (hierarchy rule).
    hierarchy: Hierarchy | None = None


def format_number(x: float, integer: bool) -> str:
    """A number as a label: whole numbers without a decimal point, others in shortest form."""
    if integer or float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def pseudonym(value: Any, key: bytes) -> str:
    """The pseudonym of one value under `key`."""
    digest = hmac.new(key, _text(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return "p_" + digest[:16]


def _check_key(key: bytes | None, column: str) -> bytes:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise Invalid(
            f"Column '{column}' is pseudonymised, which needs a key of at least {MIN_KEY_BYTES} bytes.",
            detail={"column": column, "field": "key"},
        )
    return key


def _pseudonymise(arr: pa.Array, key: bytes) -> pa.Array:
    encoded = arr.dictionary_encode()
    tokens = pa.array([pseudonym(v, key) for v in encoded.dictionary.to_pylist()], pa.string())
    return tokens.take(encoded.indices)


def _labelled(keys: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_], label: Any) -> Transformed:
    """Labels from per-row bin keys: one label per distinct key, nulls where not valid."""
    uniq, inverse = np.unique(np.where(valid, keys, 0.0), return_inverse=True)
    labels = pa.array([label(float(u)) for u in uniq], pa.string())
    array = labels.take(pa.array(inverse.astype(np.int64), mask=~valid))
    return Transformed(array, order=np.where(valid, keys, np.nan))


def _numeric(arr: pa.Array, rule: Rule) -> Transformed:
    integer = pa.types.is_integer(arr.type)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    x = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
    valid &= ~np.isnan(x)
    top, bottom = rule.top, rule.bottom
    if rule.method == "range" and rule.edges is not None:
        edges = np.asarray(rule.edges, dtype=np.float64)
        top, bottom = float(edges[-1]), float(edges[0])
        inner = edges[np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 1)]
    elif rule.method == "range":
        assert rule.width is not None
        w, origin = rule.width, rule.origin or 0.0
        inner = origin + np.floor((x - origin) / w) * w
        if bottom is not None:
            inner = np.maximum(inner, bottom)
    else:
        inner = x
    keys = inner.copy()
    if bottom is not None:
        keys[x < bottom] = -math.inf
    if top is not None:
        keys[x >= top] = top

    def label(lo: float) -> str:
        if lo == -math.inf:
            return f"<{format_number(bottom, integer)}"  # type: ignore[arg-type]
        if top is not None and lo >= top:
            return f"{format_number(top, integer)}+"
        if rule.method != "range":
            return format_number(lo, integer)
        if rule.edges is not None:
            i = int(np.searchsorted(edges, lo, side="right"))
            hi = float(edges[i])
        else:
            assert rule.width is not None
            hi = (rule.origin or 0.0) + (
                math.floor((lo - (rule.origin or 0.0)) / rule.width) + 1
            ) * rule.width
        if top is not None:
            hi = min(hi, top)
        if integer:
            return f"{int(lo)}-{int(hi) - 1}" if int(hi) - 1 != int(lo) else str(int(lo))
        return f"[{format_number(lo, False)}, {format_number(hi, False)})"

    return _labelled(keys, valid, label)


def _date(arr: pa.Array, rule: Rule) -> Transformed:
    unit = {"day": "D", "month": "M", "year": "Y"}[rule.unit or "day"]
    if pa.types.is_timestamp(arr.type):
        zone = rule.timezone or "UTC"
        local = pc.local_timestamp(arr.cast(pa.timestamp(arr.type.unit, tz=zone)))
        values = local.fill_null(0).to_numpy(zero_copy_only=False)
    else:
        values = arr.cast(pa.date32()).fill_null(0).to_numpy(zero_copy_only=False)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    truncated = values.astype(f"datetime64[{unit}]")
    keys = truncated.astype(np.int64).astype(np.float64)
    return _labelled(keys, valid, lambda k: str(np.array([int(k)], dtype=f"datetime64[{unit}]")[0]))


def _hierarchy(
    arr: pa.Array, rule: Rule, column: str, hierarchies: Mapping[str, Hierarchy] | None
) -> Transformed:
    name = rule.hierarchy or column
    tree = (hierarchies or {}).get(name)
    if tree is None:
        raise Invalid(
            f"Column '{column}' is generalised by hierarchy '{name}', which was not given.",
            detail={"column": column, "field": "hierarchy"},
        )
    try:
        level = tree.level_index(rule.level if rule.level is not None else 1)
    except Invalid as exc:
        raise Invalid(
            f"Column '{column}': {exc.message}", detail={"column": column, "field": "level"}
        ) from exc
    encoded = arr.dictionary_encode()
    values = encoded.dictionary.to_pylist()
    unknown = [v for v in values if v not in tree]
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        raise Invalid(
            f"Column '{column}': {len(unknown)} value(s) are not in hierarchy '{name}': {shown}.",
            detail={"column": column, "field": "hierarchy"},
        )
    upper = tree.truncated(level)
    rank = {v: i for i, v in enumerate(upper.values)}
    labels = [tree.ancestor(v, level) for v in values]
    array = pa.array(labels, pa.string()).take(encoded.indices)
    ranks = np.asarray([rank[label] for label in labels] or [0], dtype=np.float64)
    idx = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    order = np.where(encoded.indices.is_valid().to_numpy(zero_copy_only=False), ranks[idx], np.nan)
    return Transformed(array, order=order, hierarchy=upper)


def transform_column(
    name: str,
    arr: pa.Array,
    rule: Rule,
    *,
    key: bytes | None,
    hierarchies: Mapping[str, Hierarchy] | None,
) -> Transformed:
    """One column after its rule (not called for dropped columns)."""
    if rule.kind == "keep":
        return Transformed(arr)
    if rule.kind == "suppress":
        return Transformed(pa.nulls(len(arr), arr.type))
    if rule.kind == "pseudonymise":
        return Transformed(_pseudonymise(arr, _check_key(key, name)))
    if rule.kind == "generalise":
        if rule.method == "date":
            return _date(arr, rule)
        if rule.method == "hierarchy":
            return _hierarchy(arr, rule, name, hierarchies)
        if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            raise Invalid(
                f"Column '{name}': {rule.method} needs numbers, but the column holds {arr.type}.",
                detail={"column": name, "field": "method"},
            )
        return _numeric(arr, rule)
    raise AssertionError(f"no transform for rule {rule.kind}")  # pragma: no cover


def check_columns(table: pa.Table, policy: Policy, columns: Sequence[str] | None = None) -> None:
    """Raise `Invalid` for a column of the table without a rule, or a rule for a missing column."""
    for name in columns if columns is not None else table.column_names:
        if name not in policy.columns:
            raise Invalid(
                f"Column '{name}' has no rule in the policy.", detail={"column": name, "field": "rule"}
            )
    for name in policy.columns:
        if name not in table.column_names:
            raise Invalid(
                f"Column '{name}' of the policy is not in the table.",
                detail={"column": name, "field": "column"},
            )


def apply_rules(
    table: pa.Table,
    policy: Policy,
    *,
    key: bytes | None = None,
    hierarchies: Mapping[str, Hierarchy] | None = None,
) -> pa.Table:
    """The table with every column's rule applied and dropped columns removed (no privacy model)."""
    check_columns(table, policy)
    out: dict[str, pa.Array] = {}
    for name in policy.output_columns(table.column_names):
        arr = table.column(name).combine_chunks()
        out[name] = transform_column(name, arr, policy.columns[name], key=key, hierarchies=hierarchies).array
    return pa.table(out) if out else pa.table({}).slice(0, 0)

"""Quasi-identifiers: their integer encoding for Mondrian, and the labels of a partition's values.

Labels written for an equivalence class (all released as strings):

- numbers: ``"40"`` or ``"30-39"`` (the class's smallest and largest value, both included);
  dates and datetimes: ``"2026-03-01"`` or ``"2026-03-01/2026-03-09"`` (an ISO 8601 interval);
- categories with a hierarchy: the value, or the lowest common ancestor of the class's values;
- other categories (including values already generalised by a rule, kept in their natural
  order): the value, or the set of values ``"{a,b}"`` (sorted; a null member is written
  ``null``), or ``"*"`` when the set is the whole domain;
- ``"*"`` also for a class mixing null and non-null values of a numeric or hierarchical column;
  a class whose values are all null keeps null.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from zhishe.core.errors import Invalid
from zhishe.opendata.privacy.hierarchy import ROOT, Hierarchy
from zhishe.opendata.privacy.mondrian import Dimension, spans
from zhishe.opendata.privacy.rules import Transformed, format_number

__all__ = ["NULL_MEMBER", "QuasiIdentifier", "encode"]

#: How a null value is written inside a set label.
NULL_MEMBER = "null"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(slots=True)
class QuasiIdentifier:
    """One encoded quasi-identifier: its Mondrian dimension and how to label a class of its codes."""

    name: str
    kind: Literal["numeric", "category", "hierarchy"]
    dimension: Dimension
    #: The text of each code (None for the null code); numbers are written on demand instead.
    texts: list[str | None]
    null_code: int | None
    #: Numeric: "integer", "decimal", "date" or "datetime" (how a value is written).
    number_kind: str = ""
    #: Hierarchy: the label of each code's ancestor per level.
    node_labels: list[list[str]] = field(default_factory=list)

    def text(self, code: int) -> str | None:
        """The text of one code's value."""
        if self.kind != "numeric":
            return self.texts[code]
        if code == self.null_code:
            return None
        assert self.dimension.values is not None
        v = float(self.dimension.values[code])
        if self.number_kind == "date":
            return str(np.datetime64(int(v), "D"))
        if self.number_kind == "datetime":
            return (_EPOCH + dt.timedelta(microseconds=int(v))).isoformat()
        return format_number(v, self.number_kind == "integer")

    def classes(
        self, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64], sets: Mapping[int, tuple[int, ...]]
    ) -> tuple[list[str | None], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Label the partitions, given their smallest and largest codes (and the codes of mixed categories).

        Returns the distinct labels, each partition's index into them, and each partition's NCP
        (the same penalty that `risk.information_loss` reads back from the label).
        """
        card = self.dimension.cardinality
        if self.kind == "category":
            return self._category_classes(lo, sets)
        uniq, inverse = np.unique(lo * card + hi, return_inverse=True)
        ulo, uhi = uniq // card, uniq % card
        labels = [self._pair_label(a, b) for a, b in zip(ulo.tolist(), uhi.tolist(), strict=True)]
        penalty = np.minimum(spans(self.dimension, ulo, uhi, None), 1.0)
        if self.null_code is not None:
            penalty[(ulo != uhi) & ((ulo == self.null_code) | (uhi == self.null_code))] = 1.0
        return labels, inverse.astype(np.int64), penalty[inverse]

    def _category_classes(
        self, lo: npt.NDArray[np.int64], sets: Mapping[int, tuple[int, ...]]
    ) -> tuple[list[str | None], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        card = self.dimension.cardinality
        labels: list[str | None] = [self.texts[c] for c in range(card)]
        index = lo.copy()
        penalty = np.zeros(len(lo))
        seen: dict[tuple[int, ...], int] = {}
        for part, codes in sets.items():
            at = seen.get(codes)
            if at is None:
                at = seen[codes] = len(labels)
                labels.append(self._set_label(codes))
            index[part] = at
            penalty[part] = (len(codes) - 1) / (card - 1)
        return labels, index, penalty

    def _pair_label(self, a: int, b: int) -> str | None:
        if a == b:
            return self.text(a)
        if self.null_code is not None and self.null_code in (a, b):
            return ROOT
        if self.kind == "numeric":
            sep = "/" if self.number_kind in ("date", "datetime") else "-"
            return f"{self.text(a)}{sep}{self.text(b)}"
        anc = self.dimension.ancestors
        assert anc is not None
        for level in range(anc.shape[0]):
            if anc[level][a] == anc[level][b]:
                return self.node_labels[level][a]
        return ROOT

    def _set_label(self, codes: tuple[int, ...]) -> str | None:
        if len(codes) == self.dimension.cardinality:
            return ROOT
        members = sorted(NULL_MEMBER if self.texts[c] is None else str(self.texts[c]) for c in codes)
        return "{" + ",".join(members) + "}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value, False)
    return str(value)


def _numeric(name: str, arr: pa.Array) -> QuasiIdentifier:
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    t = arr.type
    if pa.types.is_date(t):
        raw = (
            arr.cast(pa.date32())
            .cast(pa.int32())
            .fill_null(0)
            .to_numpy(zero_copy_only=False)
            .astype(np.float64)
        )
    elif pa.types.is_timestamp(t):
        raw = (
            arr.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        )
        raw = raw.astype(np.float64)
    else:
        raw = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        valid &= ~np.isnan(raw)
    uniq, inverse = np.unique(raw[valid], return_inverse=True)
    width = float(uniq[-1] - uniq[0]) if len(uniq) > 1 else 1.0
    has_null = not valid.all()
    codes = np.zeros(len(arr), dtype=np.int32)
    codes[valid] = inverse + (1 if has_null else 0)
    values = np.concatenate(([uniq[0] - width if len(uniq) else 0.0], uniq)) if has_null else uniq
    kind = "date" if pa.types.is_date(t) else "datetime" if pa.types.is_timestamp(t) else ""
    kind = kind or ("integer" if pa.types.is_integer(t) else "decimal")
    card = len(uniq) + (1 if has_null else 0)
    dim = Dimension(codes, card, values=values.astype(np.float64), width=width or 1.0)
    return QuasiIdentifier(name, "numeric", dim, [], 0 if has_null else None, number_kind=kind)


def _dictionary(arr: pa.Array) -> tuple[list[Any], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    encoded = arr.dictionary_encode()
    valid = encoded.indices.is_valid().to_numpy(zero_copy_only=False)
    idx = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return encoded.dictionary.to_pylist(), idx, valid


def _category(name: str, arr: pa.Array, order: npt.NDArray[np.float64] | None) -> QuasiIdentifier:
    values, idx, valid = _dictionary(arr)
    counts = np.bincount(idx[valid], minlength=len(values))
    if order is not None:  # generalised bins: keep their natural order
        first = np.full(len(values), np.inf)
        np.minimum.at(first, idx[valid], order[valid])
        rank = sorted(range(len(values)), key=lambda i: (first[i], _text(values[i])))
    else:  # most frequent first, so that rare values end up grouped together
        rank = sorted(range(len(values)), key=lambda i: (-counts[i], _text(values[i])))
    code_of = np.empty(len(values), dtype=np.int32)
    code_of[rank] = np.arange(len(values), dtype=np.int32)
    has_null = not valid.all()
    codes = np.where(valid, code_of[idx] if len(values) else 0, len(values)).astype(np.int32)
    texts: list[str | None] = [_text(values[i]) for i in rank]
    if has_null:
        texts.append(None)
    dim = Dimension(codes, len(texts))
    return QuasiIdentifier(name, "category", dim, texts, len(values) if has_null else None)


def _hierarchical(name: str, arr: pa.Array, tree: Hierarchy) -> QuasiIdentifier:
    values, idx, valid = _dictionary(arr)
    unknown = [v for v in values if v not in tree]
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        raise Invalid(
            f"Column '{name}': {len(unknown)} value(s) are not in its hierarchy: {shown}.",
            detail={"column": name, "field": "hierarchy"},
        )
    position = {v: i for i, v in enumerate(tree.values)}
    rank = sorted(range(len(values)), key=lambda i: position[values[i]])
    code_of = np.empty(len(values), dtype=np.int32)
    code_of[rank] = np.arange(len(values), dtype=np.int32)
    has_null = not valid.all()
    codes = np.where(valid, code_of[idx] if len(values) else 0, len(values)).astype(np.int32)
    leaves: list[Hashable] = [values[i] for i in rank]
    texts: list[str | None] = [_text(v) for v in leaves]
    node_labels = [[tree.ancestor(v, level) for v in leaves] for level in range(1, tree.depth + 1)]
    card = len(texts) + (1 if has_null else 0)
    ancestors = np.full((tree.depth, card), -1, dtype=np.int64)
    subtree = np.ones((tree.depth, card), dtype=np.int64)
    for level, labels in enumerate(node_labels):
        ids: dict[str, int] = {}
        row = np.asarray([ids.setdefault(label, len(ids)) for label in labels], dtype=np.int64)
        ancestors[level, : len(labels)] = row
        subtree[level, : len(labels)] = np.bincount(row)[row] if len(row) else row
    if has_null:
        texts.append(None)
        for labels in node_labels:
            labels.append(ROOT)
    dim = Dimension(codes, card, ancestors=ancestors, subtree=subtree)
    return QuasiIdentifier(
        name, "hierarchy", dim, texts, len(values) if has_null else None, node_labels=node_labels
    )


def encode(name: str, transformed: Transformed, tree: Hierarchy | None) -> QuasiIdentifier:
    """Encode one quasi-identifier after its column rule; `tree` orders and generalises a kept category."""
    arr = transformed.array
    if transformed.hierarchy is not None:
        return _hierarchical(name, arr, transformed.hierarchy)
    if transformed.order is not None:
        return _category(name, arr, transformed.order)
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_date(t) or pa.types.is_timestamp(t):
        return _numeric(name, arr)
    if tree is not None and not pa.types.is_null(t):
        return _hierarchical(name, arr, tree)
    return _category(name, arr, None)

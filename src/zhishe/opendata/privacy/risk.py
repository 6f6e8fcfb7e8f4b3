"""Re-identification risk and information loss of a release, measured on its released labels.

Definitions (the same for our releases and for other tools' outputs, so they can be compared):

- **Equivalence class**: the rows that share every quasi-identifier label (null is a label too).
- **Prosecutor risk**: at most ``1 / smallest class``; on average ``classes / records``.
- **l**: the smallest number of distinct values of a sensitive column within one class.
- **NCP** (normalised certainty penalty, a.k.a. GCP), 0..1: the mean over released cells of the
  quasi-identifiers, each suppressed row counting 1 per quasi-identifier. A numeric cell's penalty
  is the width of its interval (clipped to the domain) over the domain's width; a categorical
  cell's is ``(values under it - 1) / (domain size - 1)``, where "under it" is the cell's value
  (0), the members of a set ``{a,b}`` or ``a,b``, the leaves of a hierarchy node, or all (``*``).
  A null costs 0 when the original column has nulls, else 1 (it is a suppressed cell).
  Labels read: numbers ``40``, ranges ``30-39``, ``[30-39]``, ``[30, 40)``, ``[30, 40[``,
  ``90+``, ``>=80``, ``<20``; dates ``2026``, ``2026-03``, ``2026-03-15`` and ISO intervals
  ``a/b``; integers' half-open upper bounds are read as the whole number below.
- **Discernibility**: the sum of squared class sizes, plus, for each suppressed row, the number
  of records of the original table.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zhishe.opendata.privacy.hierarchy import ROOT, Hierarchy

__all__ = [
    "InformationLoss",
    "RiskReport",
    "assemble_report",
    "column_penalty",
    "information_loss",
    "label_penalty",
    "risk_report",
]

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"^\s*[\[(]?\s*({_NUM})\s*(?:-|,|\.\.|–)\s*({_NUM})\s*([\])\[]?)\s*$")
_SINGLE = re.compile(rf"^\s*({_NUM})\s*$")
_ABOVE = re.compile(rf"^\s*(?:>=\s*({_NUM})|({_NUM})\s*\+|>\s*({_NUM}))\s*$")
_BELOW = re.compile(rf"^\s*(?:<=\s*({_NUM})|<\s*({_NUM}))\s*$")
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class InformationLoss:
    """How much a release generalised and suppressed, by NCP and discernibility."""

    ncp: float
    ncp_by_column: dict[str, float]
    discernibility: int
    classes: int
    records: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class RiskReport:
    """The risk and utility figures of one release, and whether it meets its policy."""

    records: int
    quasi_identifiers: tuple[str, ...]
    k: int
    equivalence_classes: int
    smallest_class: int
    share_below_k: float
    prosecutor_risk_max: float
    prosecutor_risk_avg: float
    suppressed: int
    suppressed_share: float
    discernibility: int
    l_diversity: int | None = None
    ncp: float | None = None
    ncp_by_column: dict[str, float] = field(default_factory=dict)
    meets_policy: bool = True
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "records": self.records,
            "quasi_identifiers": list(self.quasi_identifiers),
            "k": self.k,
            "equivalence_classes": self.equivalence_classes,
            "smallest_class": self.smallest_class,
            "share_below_k": self.share_below_k,
            "prosecutor_risk_max": self.prosecutor_risk_max,
            "prosecutor_risk_avg": self.prosecutor_risk_avg,
            "l_diversity": self.l_diversity,
            "ncp": self.ncp,
            "ncp_by_column": dict(self.ncp_by_column),
            "discernibility": self.discernibility,
            "suppressed": self.suppressed,
            "suppressed_share": self.suppressed_share,
            "meets_policy": self.meets_policy,
            "reasons": list(self.reasons),
        }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Domain:
    """What a label is measured against: one original column's values."""

    def __init__(self, column: pa.ChunkedArray, tree: Hierarchy | None) -> None:
        t = column.type
        self.tree = tree
        self.has_null = column.null_count > 0
        self.integer = pa.types.is_integer(t)
        self.date = pa.types.is_date(t)
        self.timestamp = pa.types.is_timestamp(t)
        self.numeric = self.integer or pa.types.is_floating(t) or self.date or self.timestamp
        if self.numeric:
            if self.date:
                col = column.cast(pa.date32()).cast(pa.int32())
            elif self.timestamp:
                col = column.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
            else:
                col = column
            mm = pc.min_max(col)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            self.lo = float(lo) if lo is not None else 0.0
            self.hi = float(hi) if hi is not None else 0.0
            self.size = 0
            self.values: set[str] = set()
        else:
            self.values = {_text(v) for v in pc.unique(column).to_pylist() if v is not None}
            self.size = len(self.values) + (1 if self.has_null else 0)
        self.unit = 1.0 if (self.integer or self.date or self.timestamp) else 0.0

    def numeric_penalty(self, lo: float, hi: float) -> float:
        width = self.hi - self.lo
        if width <= 0:
            return 0.0
        lo, hi = max(lo, self.lo), min(hi, self.hi)
        return min(1.0, max(0.0, hi - lo) / width)

    def category_penalty(self, count: int) -> float:
        return 0.0 if self.size <= 1 else min(1.0, max(0, count - 1) / (self.size - 1))


def _temporal_bounds(text: str, timestamp: bool) -> tuple[float, float] | None:
    """The first and last day (or microsecond) that an ISO date, month, year or datetime covers."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}", text):
            start, end = dt.date(int(text), 1, 1), dt.date(int(text), 12, 31)
        elif re.fullmatch(r"\d{4}-\d{2}", text):
            y, m = int(text[:4]), int(text[5:])
            start = dt.date(y, m, 1)
            end = (dt.date(y + m // 12, m % 12 + 1, 1)) - dt.timedelta(days=1)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            start = end = dt.date.fromisoformat(text)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            us = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
            return (float(us), float(us)) if timestamp else (float(us // _DAY_US), float(us // _DAY_US))
    except ValueError:
        return None
    a = (start - dt.date(1970, 1, 1)).days
    b = (end - dt.date(1970, 1, 1)).days
    if timestamp:
        return float(a * _DAY_US), float((b + 1) * _DAY_US - 1)
    return float(a), float(b)


def _numeric_bounds(label: str, domain: _Domain) -> tuple[float, float] | None:
    if domain.date or domain.timestamp:
        parts = label.split("/")
        if len(parts) == 2:
            a, b = _temporal_bounds(parts[0], domain.timestamp), _temporal_bounds(parts[1], domain.timestamp)
            return (a[0], b[1]) if a and b else None
        return _temporal_bounds(label, domain.timestamp)
    if m := _SINGLE.match(label):
        return float(m[1]), float(m[1])
    if m := _PAIR.match(label):
        lo, hi = float(m[1]), float(m[2])
        if m[3] in (")", "[") and domain.integer:
            hi -= 1
        return lo, hi
    if m := _ABOVE.match(label):
        if m[3] is not None:
            return float(m[3]) + domain.unit, math.inf
        return float(m[1] if m[1] is not None else m[2]), math.inf
    if m := _BELOW.match(label):
        if m[1] is not None:
            return -math.inf, float(m[1])
        return -math.inf, float(m[2]) - domain.unit
    return None


def label_penalty(label: str | None, domain: _Domain) -> float:
    """The NCP of one released cell (see the module doc); ValueError for a label it cannot read."""
    if label is None:
        return 0.0 if domain.has_null else 1.0
    if label == ROOT:
        return 1.0
    tree = domain.tree
    if domain.numeric:
        bounds = _numeric_bounds(label, domain)
        if bounds is None and tree is not None and (leaves := tree.leaves_under(label)) is not None:
            nums = [float(v) for v in leaves if isinstance(v, int | float)]  # type: ignore[arg-type]
            bounds = (min(nums), max(nums)) if nums else None
        if bounds is None and "," in label:
            parts = [_numeric_bounds(p, domain) for p in label.strip("{}").split(",")]
            if all(parts):
                bounds = (min(p[0] for p in parts if p), max(p[1] for p in parts if p))
        if bounds is None:
            raise ValueError(f"cannot read the label {label!r} of a numeric column")
        return domain.numeric_penalty(*bounds)
    if label in domain.values:
        return 0.0
    if tree is not None and (leaves := tree.leaves_under(label)) is not None:
        return domain.category_penalty(sum(1 for v in leaves if _text(v) in domain.values))
    members = {m.strip() for m in label.strip("{}").split(",")}
    if len(members) == 1 and label.strip("{}") == label:
        raise ValueError(f"cannot read the label {label!r}: not a value, set, hierarchy node or '*'")
    return domain.category_penalty(len(members))  # a member may be NULL_MEMBER: null is a value too


def _classes(
    table: pa.Table, quasi_identifiers: Sequence[str], sensitive: Sequence[str]
) -> tuple[np.ndarray[Any, Any], list[np.ndarray[Any, Any]]]:
    """The size of each equivalence class, and per sensitive column its distinct values per class."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=np.int64), [np.zeros(0, dtype=np.int64) for _ in sensitive]
    if not quasi_identifiers:
        sizes = np.array([table.num_rows])
        return sizes, [np.array([pc.count_distinct(table.column(s), mode="all").as_py()]) for s in sensitive]
    keys = [f"_q{i}" for i in range(len(quasi_identifiers))]
    cols = {key: table.column(q) for key, q in zip(keys, quasi_identifiers, strict=True)}
    cols.update({f"_s{i}": table.column(s) for i, s in enumerate(sensitive)})
    aggs: list[Any] = [([], "count_all")]
    aggs += [(f"_s{i}", "count_distinct", pc.CountOptions(mode="all")) for i in range(len(sensitive))]
    grouped = pa.table(cols).group_by(keys, use_threads=False).aggregate(aggs)
    sizes = grouped.column("count_all").to_numpy()
    return sizes, [grouped.column(f"_s{i}_count_distinct").to_numpy() for i in range(len(sensitive))]


def column_penalty(original: pa.ChunkedArray, released: pa.ChunkedArray, tree: Hierarchy | None) -> float:
    """The sum of the NCP of a released column's cells, measured against the original column's domain."""
    domain = _Domain(original, tree)
    counts = pc.value_counts(released.cast(pa.string()))
    labels: list[str | None] = counts.field("values").to_pylist()
    n = counts.field("counts").to_numpy()
    penalties = np.array([label_penalty(label, domain) for label in labels], dtype=np.float64)
    return float(penalties @ n) if len(n) else 0.0


def information_loss(
    original: pa.Table,
    released: pa.Table,
    quasi_identifiers: Sequence[str],
    *,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    suppressed: int | None = None,
) -> InformationLoss:
    """NCP and discernibility of `released` against `original` (see the module doc for the definitions).

    Rows need not correspond: every released label is measured against its column's domain in
    `original`. `suppressed` defaults to the rows missing from `released`.
    """
    records = released.num_rows
    supp = original.num_rows - records if suppressed is None else suppressed
    total = records + supp
    by_column: dict[str, float] = {}
    for q in quasi_identifiers:
        cells = column_penalty(original.column(q), released.column(q), (hierarchies or {}).get(q))
        by_column[q] = (cells + supp) / total if total else 0.0
    sizes, _ = _classes(released, quasi_identifiers, ())
    dm = int((sizes.astype(np.int64) ** 2).sum()) + supp * total
    ncp = sum(by_column.values()) / len(by_column) if by_column else 0.0
    return InformationLoss(ncp, by_column, dm, len(sizes), records, supp)


def risk_report(
    table: pa.Table,
    quasi_identifiers: Sequence[str],
    *,
    k: int,
    sensitive: Sequence[str] = (),
    l: int | None = None,  # noqa: E741 - the standard name
    original: pa.Table | None = None,
    suppressed: int = 0,
    hierarchies: Mapping[str, Hierarchy] | None = None,
    max_suppression: float | None = None,
) -> RiskReport:
    """The risk report of a released table; with `original`, also its NCP.

    `suppressed` is the number of rows removed from the release; `max_suppression` (a share)
    and `l` are checked when given.
    """
    by_column: dict[str, float] | None = None
    if original is not None:
        total = table.num_rows + suppressed
        by_column = {
            q: (column_penalty(original.column(q), table.column(q), (hierarchies or {}).get(q)) + suppressed)
            / total
            if total
            else 0.0
            for q in quasi_identifiers
        }
    return assemble_report(
        table,
        quasi_identifiers,
        k=k,
        sensitive=sensitive,
        l=l,
        suppressed=suppressed,
        max_suppression=max_suppression,
        ncp_by_column=by_column,
    )


def assemble_report(
    table: pa.Table,
    quasi_identifiers: Sequence[str],
    *,
    k: int,
    sensitive: Sequence[str],
    l: int | None,  # noqa: E741 - the standard name
    suppressed: int,
    max_suppression: float | None,
    ncp_by_column: Mapping[str, float] | None,
) -> RiskReport:
    """The report from the released table and the NCP of each quasi-identifier, when known."""
    sizes, distinct = _classes(table, quasi_identifiers, sensitive)
    records = table.num_rows
    total = records + suppressed
    smallest = int(sizes.min()) if len(sizes) else 0
    below = int(sizes[sizes < k].sum()) if len(sizes) else 0
    l_div = min((int(d.min()) for d in distinct if len(d)), default=None) if sensitive else None
    by_column = dict(ncp_by_column or {})
    ncp = sum(by_column.values()) / len(by_column) if ncp_by_column is not None and by_column else None
    reasons = []
    if records and smallest < k:
        reasons.append(
            f"{below} record(s) are in equivalence classes smaller than k={k} (smallest: {smallest})."
        )
    if l is not None and records and l_div is not None and l_div < l:
        reasons.append(
            f"An equivalence class has only {l_div} distinct sensitive value(s); l={l} is required."
        )
    share = suppressed / total if total else 0.0
    if max_suppression is not None and share > max_suppression:
        reasons.append(
            f"{suppressed} record(s) ({share:.1%}) were suppressed; at most {max_suppression:.1%} may be."
        )
    return RiskReport(
        records=records,
        quasi_identifiers=tuple(quasi_identifiers),
        k=k,
        equivalence_classes=len(sizes),
        smallest_class=smallest,
        share_below_k=below / records if records else 0.0,
        prosecutor_risk_max=1 / smallest if smallest else 0.0,
        prosecutor_risk_avg=len(sizes) / records if records else 0.0,
        suppressed=suppressed,
        suppressed_share=share,
        discernibility=int((sizes.astype(np.int64) ** 2).sum()) + suppressed * total,
        l_diversity=l_div,
        ncp=ncp,
        ncp_by_column=by_column,
        meets_policy=not reasons,
        reasons=tuple(reasons),
    )

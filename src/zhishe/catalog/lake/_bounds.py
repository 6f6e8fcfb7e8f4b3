"""Probe bounds for keyset pages: read a page from the few row groups that can hold it.

A page ordered by a column ``k`` (ascending, say) starting after value ``v`` is the first
``limit + 1`` rows with ``k >= v``. Without a bound DuckDB must look at every later row to be
sure of the order. Parquet row-group statistics say where ``k``'s values lie, so a value ``B``
is chosen such that the row groups holding values from ``v`` to ``B`` have enough rows, and the
page is first asked for with the extra condition ``k <= B``, which the scan prunes on.

This is only ever a shortcut: when the bounded query returns ``limit + 1`` rows they are the
right ones whatever the statistics said (every row it left out sorts after ``B``), and when it
returns fewer the page is asked for again with a wider bound, then with none.

Files in a Delta table never change, so each file's row-group ranges are read once and cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow.dataset as pds

__all__ = ["Ranges", "bound_for", "column_ranges"]

_CACHE_SIZE = 8192
_cache: OrderedDict[tuple[str, str, str], list[tuple[Any, Any, int, int]] | None] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Ranges:
    """Row groups of one column: (min, max, rows, nulls) each; `complete` when every group had statistics."""

    groups: list[tuple[Any, Any, int, int]]
    complete: bool

    @property
    def nulls(self) -> int:
        """Rows whose value is NULL, over all row groups with statistics."""
        return sum(g[3] for g in self.groups)


def _file_ranges(fragment: Any, column: str) -> list[tuple[Any, Any, int, int]] | None:
    metadata = fragment.metadata
    groups: list[tuple[Any, Any, int, int]] = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        stats = None
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.path_in_schema == column:
                stats = chunk.statistics
                break
        if group.num_rows == 0:
            continue
        if stats is None or not stats.has_min_max or stats.null_count is None:
            return None
        groups.append((_normal(stats.min), _normal(stats.max), group.num_rows, int(stats.null_count)))
    return groups


def _normal(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def column_ranges(scan: pds.FileSystemDataset, table_uri: str, column: str) -> Ranges:
    """The row-group value ranges of `column` in every file of `scan` (cached per file)."""
    groups: list[tuple[Any, Any, int, int]] = []
    complete = True
    for fragment in scan.get_fragments():
        key = (table_uri, fragment.path, column)
        with _cache_lock:
            known = key in _cache
            ranges = _cache.get(key)
            if known:
                _cache.move_to_end(key)
        if not known:
            ranges = _file_ranges(fragment, column)
            with _cache_lock:
                _cache[key] = ranges
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
        if ranges is None:
            complete = False
        else:
            groups.extend(ranges)
    return Ranges(groups=groups, complete=complete)


def bound_for(ranges: Ranges, *, desc: bool, start: Any, need: int) -> Any | None:
    """A bound B on the sort column so that values from `start` to B fill about `need` rows.

    `start` is the page's first value (None on the first page). Returns None when no bound
    would exclude anything (or the statistics cannot tell).
    """
    if not ranges.complete or not ranges.groups:
        return None
    try:
        if desc:
            candidates = [g for g in ranges.groups if start is None or g[0] <= start]
            candidates.sort(key=lambda g: g[1], reverse=True)
        else:
            candidates = [g for g in ranges.groups if start is None or g[1] >= start]
            candidates.sort(key=lambda g: g[0])
    except TypeError:  # values of mixed types: no bound
        return None
    rows = 0
    bound: Any = None
    for low, high, count, nulls in candidates:
        rows += count - nulls
        edge = low if desc else high
        bound = edge if bound is None else (min(bound, edge) if desc else max(bound, edge))
        if rows >= need:
            break
    if bound is None or rows < need:
        return None
    extreme = min(g[0] for g in ranges.groups) if desc else max(g[1] for g in ranges.groups)
    return None if bound == extreme else bound

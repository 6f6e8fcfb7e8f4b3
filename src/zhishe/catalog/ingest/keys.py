"""Key checks before an upsert: the key columns must be unique and never null within one file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DuplicateKey", "duplicate_keys", "one_to"]


def one_to(count: int) -> pa.Array:
    """1, 2, ..., count as int64."""
    if count == 0:
        return pa.array([], pa.int64())
    return pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), count))


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    """A key value that more than one row has, or that has a null part, and the rows (1-based)."""

    key: dict[str, Any]
    rows: list[int]
    kind: Literal["duplicate", "null"] = "duplicate"

    @property
    def message(self) -> str:
        """A sentence for people: which key, which rows."""
        key = ", ".join(f"{name}={value!r}" for name, value in self.key.items())
        rows = ", ".join(str(r) for r in self.rows[:20]) + (" …" if len(self.rows) > 20 else "")
        if self.kind == "null":
            empty = ", ".join(name for name, value in self.key.items() if value is None)
            return f"key column(s) {empty} are empty in row(s) {rows}"
        return f"key {key} appears in rows {rows}"


def duplicate_keys(
    table: pa.Table,
    key_columns: list[str],
    *,
    limit: int = 1000,
    row_numbers: pa.Array | None = None,
) -> list[DuplicateKey]:
    """Keys that appear in more than one row of `table`, and keys with a null part.

    Rows are 1-based positions in `table`, or the matching entries of `row_numbers` (pass
    `LoadResult.row_numbers` to report rows of the file when bad rows were left out). At most
    `limit` keys are returned, in order of their first row. Key columns cannot be point columns.
    """
    if not key_columns:
        raise ValueError("at least one key column is needed")
    numbers = one_to(table.num_rows) if row_numbers is None else pc.cast(row_numbers, pa.int64())
    work = table.select(key_columns).append_column("__row", numbers)
    grouped = work.group_by(key_columns, use_threads=False).aggregate([("__row", "list"), ("__row", "min")])
    wanted = pc.greater(pc.list_value_length(grouped.column("__row_list")), 1)
    for name in key_columns:
        wanted = pc.or_(wanted, pc.is_null(grouped.column(name)))
    chosen = grouped.filter(wanted).sort_by([("__row_min", "ascending")]).slice(0, max(limit, 0))
    found = []
    for record in chosen.to_pylist():
        key = {name: record[name] for name in key_columns}
        kind: Literal["duplicate", "null"] = "null" if any(v is None for v in key.values()) else "duplicate"
        found.append(DuplicateKey(key=key, rows=sorted(record["__row_list"]), kind=kind))
    return found

"""Writing dataset versions: append, replace and upsert commits, compaction and the version list.

Every write is one Delta commit. Each row carries the hidden `ROW_ID`, allocated by the caller
(`row_id_start`, `row_id_start + 1`, … in the order of the incoming rows); rows updated in place
by an upsert keep the id they already had.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from zhishe.catalog.lake._schema import check_compatible, check_declared, conform, key_names, stored_types
from zhishe.catalog.lake._table import (
    Uri,
    dataset,
    lake_error,
    open_table,
    table_schema,
    uri_str,
    writer_properties,
)
from zhishe.catalog.lake.errors import LakeDataError, LakeNotFound, LakeQueryError, LakeSchemaError
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType

__all__ = [
    "VersionInfo",
    "WriteMode",
    "WriteResult",
    "compact",
    "next_row_id",
    "table_exists",
    "versions",
    "write_version",
]

WriteMode = Literal["append", "replace", "upsert"]

#: Key of the caller's metadata inside the Delta commit's custom metadata.
_META_KEY = "zhishe"
#: Key of what the lake itself records about a write (mode, row-id range).
_WRITE_KEY = "zhishe_write"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one `write_version` call committed."""

    version: int  #: the Delta version committed (the current one when nothing changed)
    rows_inserted: int
    rows_updated: int  #: rows whose values actually changed (upsert only)
    rows_deleted: int  #: rows the write removed (replace only)
    row_count: int  #: rows in the table at `version`
    committed: bool  #: False when an upsert changed nothing, so no version was made
    next_row_id: int  #: `row_id_start + len(data)`: the first id the caller may allocate next
    rows_unchanged: int = 0  #: upsert rows that matched an existing row with identical values


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One committed version of a table."""

    version: int
    timestamp: datetime  #: commit time, aware UTC
    operation: str  #: Delta operation: WRITE, MERGE, OPTIMIZE, …
    metadata: dict[str, str] = field(default_factory=dict)  #: the caller's commit metadata
    num_rows: int | None = None  #: rows in the table at this version, when the log still has it


def table_exists(uri: Uri) -> bool:
    """Whether a Delta table exists at `uri`."""
    try:
        return bool(DeltaTable.is_deltatable(uri_str(uri)))
    except DeltaError:
        return False


def write_version(
    uri: Uri,
    data: pa.Table,
    *,
    columns: list[ColumnSpec],
    mode: WriteMode,
    row_id_start: int,
    metadata: Mapping[str, str],
) -> WriteResult:
    """Commit `data` (typed as `arrow_schema(columns)`) as a new version of the table at `uri`.

    ``append`` adds the rows; ``replace`` overwrites every row (and the schema, when the declared
    columns changed); ``upsert`` merges on the key columns: matched rows are updated in place and
    keep their row id, the others are inserted. The table is created on the first write.
    Raises LakeSchemaError (schema mismatch), LakeDataError (bad keys, row ids) or
    LakeConflictError (a concurrent writer committed first; nothing was written).
    """
    location = uri_str(uri)
    if mode not in ("append", "replace", "upsert"):
        raise LakeDataError(f"unknown write mode {mode!r}", detail={"mode": mode})
    if isinstance(row_id_start, bool) or not isinstance(row_id_start, int) or row_id_start < 0:
        raise LakeDataError(
            f"row_id_start must be a non-negative integer, not {row_id_start!r}",
            detail={"row_id_start": row_id_start},
        )
    check_declared(columns)
    keys = key_names(columns)
    if mode == "upsert" and not keys:
        raise LakeSchemaError("upsert needs at least one key column", detail={})
    rows = _with_row_ids(conform(data, columns), row_id_start)
    if mode == "upsert":
        _check_upsert_keys(rows, keys)
    write_id = uuid.uuid4().hex
    commit = CommitProperties(
        custom_metadata=_commit_metadata(
            metadata, mode=mode, row_id_start=row_id_start, rows=rows, write_id=write_id
        )
    )
    next_id = row_id_start + rows.num_rows
    table = _open_or_none(location)
    if table is None:
        try:
            write_deltalake(
                location, rows, mode="append", writer_properties=writer_properties(), commit_properties=commit
            )
        except DeltaError as exc:
            raise lake_error(exc, uri=location, action="create") from exc
        # Another writer may have committed right after us: find our own commit by its id.
        created = open_table(location, _find_commit(location, write_id))
        return WriteResult(
            version=created.version(),
            rows_inserted=rows.num_rows,
            rows_updated=0,
            rows_deleted=0,
            row_count=created.count(),
            committed=True,
            next_row_id=next_id,
        )
    _check_row_ids(table, row_id_start, rows.num_rows)
    schema = table_schema(table)
    if mode == "replace":
        rows_before = table.count()
        same_schema = list(stored_types(schema).items()) == [(c.name, ColumnType(c.type)) for c in columns]
        try:
            write_deltalake(
                table,
                rows,
                mode="overwrite",
                schema_mode=None if same_schema else "overwrite",
                writer_properties=writer_properties(),
                commit_properties=commit,
            )
        except DeltaError as exc:
            raise lake_error(exc, uri=location, action="replace") from exc
        return WriteResult(
            version=table.version(),
            rows_inserted=rows.num_rows,
            rows_updated=0,
            rows_deleted=rows_before,
            row_count=table.count(),
            committed=True,
            next_row_id=next_id,
        )
    check_compatible(columns, schema, mode=mode)
    rows = rows.select(schema.names)  # the stored column order
    if mode == "append":
        try:
            write_deltalake(
                table, rows, mode="append", writer_properties=writer_properties(), commit_properties=commit
            )
        except DeltaError as exc:
            raise lake_error(exc, uri=location, action="append to") from exc
        return WriteResult(
            version=table.version(),
            rows_inserted=rows.num_rows,
            rows_updated=0,
            rows_deleted=0,
            row_count=table.count(),
            committed=True,
            next_row_id=next_id,
        )
    return _upsert(table, rows, location=location, keys=keys, commit=commit, next_id=next_id)


def _upsert(
    table: DeltaTable,
    rows: pa.Table,
    *,
    location: str,
    keys: list[str],
    commit: CommitProperties,
    next_id: int,
) -> WriteResult:
    version_before = table.version()
    values = [name for name in rows.column_names if name != ROW_ID and name not in keys]
    on = " AND ".join(f"target.{_q(k)} = source.{_q(k)}" for k in keys)
    merger = table.merge(
        rows,
        predicate=on,
        source_alias="source",
        target_alias="target",
        writer_properties=writer_properties(),
        commit_properties=commit,
    )
    if values:
        # Only rows whose values differ are rewritten, so a no-op upsert rewrites nothing.
        changed = " OR ".join(f"(target.{_q(c)} IS DISTINCT FROM source.{_q(c)})" for c in values)
        merger = merger.when_matched_update({c: f"source.{_q(c)}" for c in values}, predicate=changed)
    merger = merger.when_not_matched_insert({c: f"source.{_q(c)}" for c in rows.column_names})
    try:
        metrics = merger.execute()
    except DeltaError as exc:
        raise lake_error(exc, uri=location, action="upsert into") from exc
    inserted = int(metrics.get("num_target_rows_inserted", 0))
    updated = int(metrics.get("num_target_rows_updated", 0))
    return WriteResult(
        version=table.version(),
        rows_inserted=inserted,
        rows_updated=updated,
        rows_deleted=0,
        row_count=table.count(),
        committed=table.version() != version_before,
        next_row_id=next_id,
        rows_unchanged=max(0, rows.num_rows - inserted - updated),
    )


def _q(name: str) -> str:
    """A column name quoted for a delta-rs (DataFusion) SQL predicate."""
    return '"' + name.replace('"', '""') + '"'


def _open_or_none(location: str) -> DeltaTable | None:
    try:
        return open_table(location)
    except LakeNotFound:
        return None


def _with_row_ids(rows: pa.Table, start: int) -> pa.Table:
    # start, start + 1, …: built in Arrow (a Python range of a million ints costs ~0.1 s)
    ones = pa.repeat(pa.scalar(1, pa.int64()), rows.num_rows)
    ids = pc.add(pc.cumulative_sum(ones), start - 1) if rows.num_rows else pa.array([], pa.int64())
    table = rows.add_column(0, pa.field(ROW_ID, pa.int64(), nullable=False), ids)
    return table


def _check_row_ids(table: DeltaTable, start: int, count: int) -> None:
    """Refuse ids that rows of the current version already hold: ids must stay unique.

    Checked exactly on the id range, so concurrent writers whose ranges were allocated in one
    order and commit in another are not refused. Files whose logged id range misses the new
    range are never opened.
    """
    if count == 0:
        return
    actions = pa.table(table.get_add_actions(flatten=True))
    low, high = f"min.{ROW_ID}", f"max.{ROW_ID}"
    if actions.num_rows == 0:
        return
    if low in actions.column_names and high in actions.column_names:
        overlaps = pc.and_kleene(
            pc.greater_equal(actions.column(high), start), pc.less(actions.column(low), start + count)
        )
        if pc.any(pc.fill_null(overlaps, True)).as_py() is False:  # no file's id range meets ours
            return
    rid = pds.field(ROW_ID)
    taken = dataset(table).count_rows(filter=(rid >= start) & (rid < start + count))
    if taken:
        raise LakeDataError(
            f"row ids {start}..{start + count - 1} are already used by {taken} row(s) of the table",
            detail={"row_id_start": start, "rows": count, "taken": taken},
        )


def _check_upsert_keys(rows: pa.Table, keys: list[str]) -> None:
    for key in keys:
        nulls = rows.column(key).null_count
        if nulls:
            raise LakeDataError(
                f"key column {key!r} is empty in {nulls} row(s); an upsert needs every key",
                detail={"column": key, "null_rows": nulls},
            )
    counts = rows.group_by(keys).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if duplicated.num_rows:
        example = {k: duplicated.column(k)[0].as_py() for k in keys}
        raise LakeDataError(
            f"the rows repeat the key {example!r} ({duplicated.num_rows} duplicated key(s)); "
            "an upsert needs each key once",
            detail={"columns": keys, "duplicated_keys": duplicated.num_rows, "example": str(example)},
        )


def _commit_metadata(
    metadata: Mapping[str, str], *, mode: str, row_id_start: int, rows: pa.Table, write_id: str
) -> dict[str, Any]:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise LakeDataError(
                f"commit metadata must map strings to strings; {key!r} → {value!r} does not",
                detail={"key": str(key)},
            )
    return {
        _META_KEY: dict(metadata),
        _WRITE_KEY: {"mode": mode, "row_id_start": row_id_start, "rows": rows.num_rows, "write_id": write_id},
    }


def _find_commit(location: str, write_id: str) -> int:
    """The version whose commit carries `write_id` (searched among the latest commits)."""
    table = open_table(location)
    for entry in _history(table, 100):
        info = entry.get(_WRITE_KEY)
        if isinstance(info, dict) and info.get("write_id") == write_id:
            return int(entry["version"])
    return int(table.version())


def _history(table: DeltaTable, limit: int | None) -> list[dict[str, Any]]:
    """The commit history, newest first, numbered consistently.

    delta-rs numbers history entries down from the loaded version while listing the log afresh,
    so a commit landing in between shifts the numbers; read again until no commit intervened.
    """
    entries: list[dict[str, Any]] = []
    for _ in range(10):
        loaded = table.version()
        entries = table.history(limit)
        table.update_incremental()
        if table.version() == loaded:
            break
    return entries


def next_row_id(uri: Uri) -> int:
    """One more than the largest row id in the table's current version (0 when it is empty)."""
    table = open_table(uri)
    actions = pa.table(table.get_add_actions(flatten=True))
    column = f"max.{ROW_ID}"
    if actions.num_rows == 0 or column not in actions.column_names:
        return 0
    largest = pc.max(actions.column(column)).as_py()
    return 0 if largest is None else int(largest) + 1


def compact(uri: Uri, *, sort_by: list[str] | None = None, metadata: Mapping[str, str] | None = None) -> int:
    """Rewrite the table's files sorted for pruning; returns the version committed (or the current one).

    With no `sort_by` the files are sorted by `ROW_ID` (the default paging order); one column
    sorts by it, several are z-ordered (clustered on all of them together). Old versions stay
    readable: nothing is vacuumed.
    """
    location = uri_str(uri)
    table = open_table(location)
    names = [name for name in table_schema(table).names]
    order = sort_by or [ROW_ID]
    for name in order:
        if name not in names:
            raise LakeQueryError(f"cannot sort by unknown column {name!r}", detail={"column": name})
    meta = _commit_metadata(
        metadata or {}, mode="compact", row_id_start=0, rows=pa.table({}), write_id=uuid.uuid4().hex
    )
    try:
        table.optimize.z_order(
            order,
            writer_properties=writer_properties(),
            commit_properties=CommitProperties(custom_metadata=meta),
        )
    except DeltaError as exc:
        raise lake_error(exc, uri=location, action="compact") from exc
    return int(table.version())


def versions(uri: Uri, *, limit: int | None = None) -> list[VersionInfo]:
    """The table's versions, newest first (at most `limit`), with their commit metadata and row counts."""
    location = uri_str(uri)
    table = open_table(location)
    history = _history(table, limit)
    counts = _row_counts(location, history)
    result: list[VersionInfo] = []
    for entry in history:
        number = int(entry["version"])
        raw = entry.get(_META_KEY)
        meta = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        result.append(
            VersionInfo(
                version=number,
                timestamp=datetime.fromtimestamp(int(entry["timestamp"]) / 1000, tz=UTC),
                operation=str(entry.get("operation", "")),
                metadata=meta,
                num_rows=counts.get(number),
            )
        )
    return result


def _row_counts(location: str, history: list[dict[str, Any]]) -> dict[int, int]:
    """Rows at each listed version: one snapshot count, then each commit's own row metrics.

    A commit whose metrics do not say how the count changed (or a version no longer in the
    log) is counted from its snapshot instead; versions that cannot be loaded are left out.
    """
    counts: dict[int, int] = {}
    current: int | None = None
    for entry in sorted(history, key=lambda e: int(e["version"])):
        number = int(entry["version"])
        following = _count_after(current, entry) if current is not None else None
        if following is None:
            try:
                following = int(DeltaTable(location, version=number).count())
            except DeltaError:
                current = None
                continue
        counts[number] = current = following
    return counts


def _count_after(before: int, entry: dict[str, Any]) -> int | None:
    operation = entry.get("operation")
    metrics = entry.get("operationMetrics") or {}
    parameters = entry.get("operationParameters") or {}
    if operation == "OPTIMIZE":
        return before
    if operation == "WRITE" and "num_added_rows" in metrics and not parameters.get("predicate"):
        added = int(metrics["num_added_rows"])
        mode = str(parameters.get("mode", ""))
        if mode == "Append":
            return before + added
        if mode == "Overwrite":
            return added
    if operation == "MERGE" and "num_target_rows_inserted" in metrics:
        return (
            before + int(metrics["num_target_rows_inserted"]) - int(metrics.get("num_target_rows_deleted", 0))
        )
    return None

"""A release's rows in file order as an Arrow IPC file, read through a memory map: pages by position.

A page of a release in its own order, with no filter, is a range of ``_row`` (``soql`` works out
which). DuckDB answers that in about a millisecond however few the rows (a cursor, binding and
planning, the Arrow export), more than the rest of the request. So each release also has
``<key>.arrow``, written when it is built: the same rows in the same order, without ``_row``
(a row's number is its position), in record batches of exactly ``batch_rows`` rows (the last may
be shorter), uncompressed so that the memory map reads them without a copy. Rows a..b are slices
of the batches a // batch_rows to b // batch_rows: about 40 µs for a page of 100 rows of 12
columns, returned as a table with the names and types the query asks for.

The file's schema metadata records ``batch_rows``, so a file written with another batch size stays
readable. Open files are kept per process and checked against the file on disk
(device, inode, size, time) at every read, so a file replaced under the same name is reopened.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

__all__ = ["BATCH_ROWS", "ROW_POSITION", "RowFile", "RowFiles", "write"]

#: Rows per record batch in files written now.
BATCH_ROWS = 2_048
#: Name a caller gives for "the row's position" (``_row``), which the file does not store.
ROW_POSITION = "_row"
_META_BATCH = b"zhishe.batch_rows"


def write(path: Path, reader: pa.RecordBatchReader, *, batch_rows: int = BATCH_ROWS) -> int:
    """Write the rows of `reader`, in order, to `path` in batches of `batch_rows`; return the count.

    If `reader` has a ``_row`` column it must number the rows 0..n-1 in order (ValueError if not);
    it is checked, then left out of the file.
    """
    schema = reader.schema
    numbered = ROW_POSITION in schema.names
    if numbered:
        schema = schema.remove(schema.get_field_index(ROW_POSITION))
    rows = 0
    pending: list[pa.RecordBatch] = []
    held = 0
    with pa.OSFile(str(path), "wb") as sink:
        writer = ipc.new_file(
            sink,
            schema.with_metadata({**(schema.metadata or {}), _META_BATCH: str(batch_rows).encode()}),
            options=ipc.IpcWriteOptions(compression=None),
        )
        try:

            def flush() -> None:
                nonlocal held
                whole = pa.Table.from_batches(pending, schema=schema).combine_chunks()
                for batch in whole.to_batches(max_chunksize=batch_rows):
                    writer.write_batch(batch)
                pending.clear()
                held = 0

            for batch in reader:
                if numbered:
                    index = batch.schema.get_field_index(ROW_POSITION)
                    expected = pa.array(np.arange(rows, rows + batch.num_rows, dtype=np.int64))
                    if not batch.column(index).cast(pa.int64()).equals(expected):
                        raise ValueError(f"rows from {rows:,} on are not numbered in order by {ROW_POSITION}")
                    batch = batch.drop_columns([ROW_POSITION])
                rows += batch.num_rows
                if not held and batch.num_rows == batch_rows:  # DuckDB's batches are usually whole
                    writer.write_batch(batch)
                    continue
                while batch.num_rows:
                    take = min(batch_rows - held, batch.num_rows)
                    pending.append(batch.slice(0, take))
                    held += take
                    batch = batch.slice(take)
                    if held == batch_rows:
                        flush()
            if held:
                flush()
        finally:
            writer.close()
    _check(path, rows)
    return rows


def _check(path: Path, rows: int) -> None:
    """Read back the batch sizes of a file just written (cheap: a memory map, no copy)."""
    found = RowFile.open(path)
    if found.rows != rows:
        raise ValueError(f"{path.name} holds {found.rows:,} rows, not {rows:,}")


#: Read plans kept per open file.
_PLANS_KEPT = 256


@dataclass(frozen=True)
class _Plan:
    """How to read some columns: the file's column indexes, the ones whose type is relabelled, where
    the positions (``_row``) go, and the result's schema."""

    indexes: list[int]
    views: list[tuple[int, pa.DataType]]
    positions: list[int]
    schema: pa.Schema


@dataclass
class RowFile:
    """One open rows file: its schema (without ``_row``), row count and batches."""

    path: Path
    identity: tuple[int, int, int, int]
    schema: pa.Schema
    rows: int
    batch_rows: int
    _reader: ipc.RecordBatchFileReader = field(repr=False)
    _batches: list[pa.RecordBatch | None] = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _plans: dict[tuple[tuple[tuple[str, str], ...], str | None], _Plan] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def open(cls, path: Path) -> RowFile:
        """Open `path` through a memory map (FileNotFoundError if absent, ValueError if malformed)."""
        stat = os.stat(path)
        source = pa.memory_map(str(path), "r")
        reader = ipc.open_file(source)
        schema = reader.schema
        meta = schema.metadata or {}
        try:
            batch_rows = int(meta[_META_BATCH])
        except (KeyError, ValueError):
            raise ValueError(f"{path.name} is not a rows file: no batch size") from None
        count = reader.num_record_batches
        rows = 0
        if count:
            last = reader.get_batch(count - 1)
            rows = (count - 1) * batch_rows + last.num_rows
        return cls(
            path=path,
            identity=_identity(stat),
            schema=schema.remove_metadata(),
            rows=rows,
            batch_rows=batch_rows,
            _reader=reader,
            _batches=[None] * count,
        )

    def read(
        self, first: int, count: int, columns: Sequence[tuple[str, str]], *, timezone: str | None = None
    ) -> pa.Table:
        """Rows ``first`` to ``first + count - 1`` (those that exist) as a table whose columns are
        `columns`, pairs of (name in the result, column of the file or ``_row``); KeyError for a
        column the file does not have. With `timezone`, timestamps that have a zone are labelled
        with that one (the same instants)."""
        plan = self._plan(tuple(columns), timezone)
        start, end = max(0, first), min(self.rows, first + count) if count > 0 else 0
        pieces: list[pa.RecordBatch] = []
        at = start
        while at < end:
            number = at // self.batch_rows
            batch = self._batch(number)
            offset = at - number * self.batch_rows
            take = min(batch.num_rows - offset, end - at)
            arrays = list(batch.slice(offset, take).select(plan.indexes).columns)
            for index, kind in plan.views:
                arrays[index] = arrays[index].view(kind)
            for index in plan.positions:
                arrays.insert(index, pa.array(np.arange(at, at + take, dtype=np.int64)))
            pieces.append(pa.RecordBatch.from_arrays(arrays, schema=plan.schema))
            at += take
        return pa.Table.from_batches(pieces, schema=plan.schema)

    def _plan(self, columns: tuple[tuple[str, str], ...], timezone: str | None) -> _Plan:
        """How to read `columns` (kept: a client paging through a query asks for the same ones)."""
        key = (columns, timezone)
        found = self._plans.get(key)
        if found is not None:
            return found
        indexes: list[int] = []
        views: list[tuple[int, pa.DataType]] = []
        positions: list[int] = []
        fields: list[pa.Field] = []
        for name, source in columns:
            if source == ROW_POSITION:
                positions.append(len(fields))
                fields.append(pa.field(name, pa.int64()))
                continue
            index = self.schema.get_field_index(source)
            if index < 0:
                raise KeyError(f"{self.path.name} has no column {source}")
            column = self.schema.field(index)
            kind = column.type
            if timezone is not None and pa.types.is_timestamp(kind) and kind.tz not in (None, timezone):
                kind = pa.timestamp(kind.unit, tz=timezone)
                views.append((len(indexes), kind))
            indexes.append(index)
            fields.append(column.with_name(name).with_type(kind))
        plan = _Plan(indexes=indexes, views=views, positions=positions, schema=pa.schema(fields))
        if len(self._plans) >= _PLANS_KEPT:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _batch(self, number: int) -> pa.RecordBatch:
        batch = self._batches[number]
        if batch is None:
            with self._lock:  # the reader is not documented as safe to share between threads
                batch = self._batches[number]
                if batch is None:
                    batch = self._reader.get_batch(number)
                    self._batches[number] = batch
        return batch


class RowFiles:
    """The rows files this process has open, at most `max_open`, each reopened if replaced."""

    def __init__(self, *, max_open: int = 64) -> None:
        self.max_open = max_open
        self._open: OrderedDict[Path, RowFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> RowFile | None:
        """The open file at `path`, or None when there is none (or it cannot be read)."""
        try:
            identity = _identity(os.stat(path))
        except FileNotFoundError:
            self.forget(path)
            return None
        with self._lock:
            found = self._open.get(path)
            if found is not None and found.identity == identity:
                self._open.move_to_end(path)
                return found
        try:
            found = RowFile.open(path)
        except (FileNotFoundError, ValueError, pa.ArrowException):
            return None
        with self._lock:
            self._open[path] = found
            self._open.move_to_end(path)
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)
        return found

    def forget(self, path: Path | None = None) -> None:
        """Close `path` (every file when None); readers holding one keep it until they finish."""
        with self._lock:
            if path is None:
                self._open.clear()
            else:
                self._open.pop(path, None)


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

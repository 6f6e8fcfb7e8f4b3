"""The serving store of the open-data query API: one read-only DuckDB file per published release.

A release is immutable, so it is laid out once, at publish time, for the queries the public makes:

- ``<root>/<key>.duckdb`` holds one table, ``data``, sorted by the release's order key (usually its
  time column; nulls first) and numbered by a hidden ``_row`` BIGINT, 0..n-1 in that order. ``_row``
  is the stable tie-breaker of every ordering and the last part of every keyset token.
- Sorting makes DuckDB's per-row-group min/max statistics (zonemaps) selective on the order key, and
  DuckDB 2.0 pushes Top-N bounds into the scan as they tighten, so ``ORDER BY ts, _row LIMIT n`` and
  a keyset page ``WHERE (ts, _row) > (…)`` read a few row groups instead of the whole table. This is
  what "plain DuckDB on an unsorted Parquet" lacks (design/MEASURED.md). No ART index is built: on
  this layout every benchmark query already runs in a few milliseconds, and an index would double
  the file and the build time (bench/opendata_query_bench.py prints the figures).
- Beside it, ``<root>/<key>.arrow`` holds the same rows in the same order as an Arrow IPC file
  (``opendata.rowfile``): a page in the release's own order with no filter is a range of ``_row``,
  which ``read_rows`` slices out of a memory map in microseconds, where DuckDB needs about a
  millisecond for any query. It costs disk: uncompressed, it is about three times the DuckDB file.
  A release built before it existed, or whose rows file is missing, is served by DuckDB alone.
- Both files are written to temporary names beside their final ones and renamed (the old rows
  file removed first, the DuckDB file renamed before the rows file), so a crash never leaves a
  half-built release, nor a rows file that belongs to another build, under its key.

Queries run on in-memory DuckDB connections, cached per process and per set of releases, that
ATTACH the release files READ_ONLY and then lock themselves down the way ``exchange.sqlguard``
does: no file or network access, no extensions, configuration locked. Each call gets its own cursor
with temporary views naming the releases as the caller asked, and a time limit enforced by
interrupting DuckDB (``QueryTimeout``, HTTP 408); the connection stays usable after it.

The store trusts the SQL it is given: ``opendata.soql`` and ``opendata.sqlapi`` produce it.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from zhishe.core.errors import Invalid, NotFound, ZhisheError
from zhishe.core.sqlsafe import PATH, clean
from zhishe.opendata import rowfile

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "ROW_COLUMN",
    "TABLE",
    "BuildInfo",
    "QueryFailed",
    "QueryTimeout",
    "ReleaseStore",
]

#: The hidden row-number column: 0..n-1 in the release's order, the keyset tie-breaker.
ROW_COLUMN = "_row"
#: The one table in each release file.
TABLE = "data"
#: Rows per Arrow batch when streaming.
DEFAULT_BATCH_ROWS = 65_536

#: Seconds between repeated interrupts of a query past its time limit.
_REINTERRUPT_SECONDS = 0.01

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_SUFFIX = ".duckdb"
_ROWS_SUFFIX = ".arrow"


class QueryTimeout(ZhisheError):
    """A query ran past its time limit and was stopped."""

    status_code = 408
    type = "timeout"


class QueryFailed(Invalid):
    """DuckDB refused or failed a query at run time (a bad cast, an overflow, too much memory)."""

    status_code = 400
    type = "query_failed"


@dataclass(frozen=True)
class BuildInfo:
    """What ``ReleaseStore.build`` wrote: where, how many rows, the columns and how long it took."""

    key: str
    path: Path
    rows: int
    #: Column name → DuckDB type, in table order, without the hidden ``_row``.
    columns: dict[str, str]
    order_by: list[str]
    bytes: int
    seconds: float
    #: The size of the rows file (``<key>.arrow``) written beside it.
    rows_file_bytes: int = 0


@dataclass
class _Attached:
    """One cached connection with a set of release files attached, and each key's database name."""

    con: duckdb.DuckDBPyConnection
    databases: dict[str, str]
    #: Views created once on the connection: name → (release key, whether ``_row`` is shown).
    views: dict[str, tuple[str, bool]]
    lock: threading.Lock


class ReleaseStore:
    """Release files under `root`: built once, then queried read-only by any number of processes.

    `memory_limit` and `threads` bound each query connection; `max_connections` bounds how many
    attached sets of releases one process keeps open.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        memory_limit: str = "1GB",
        threads: int = 2,
        max_connections: int = 32,
        timezone: str = "UTC",
    ) -> None:
        self.root = Path(root)
        #: The zone naive timestamps in queries are read in, and date_trunc counts days in.
        self.timezone = timezone
        self.memory_limit = memory_limit
        self.threads = threads
        self.max_connections = max_connections
        self._cache: OrderedDict[tuple[str, ...], _Attached] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._row_files = rowfile.RowFiles(max_open=max_connections * 2)

    # --- files ------------------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """The file that serves release `key` (Invalid unless `key` is a plain file-safe name)."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise Invalid(
                f"release key {key!r} is not valid: use 1-128 letters, digits, '.', '_' or '-'",
                detail={"key": str(key)},
            )
        return self.root / f"{key}{_SUFFIX}"

    def rows_path(self, key: str) -> Path:
        """The rows file of release `key` (see ``opendata.rowfile``)."""
        return self.path(key).with_suffix(_ROWS_SUFFIX)

    def exists(self, key: str) -> bool:
        """Whether release `key` has been built."""
        return self.path(key).is_file()

    def remove(self, key: str) -> None:
        """Delete release `key`'s file (nothing if absent); readers already using it are unaffected."""
        path = self.path(key)
        with self._cache_lock:
            for keys in [k for k in self._cache if key in k]:
                del self._cache[keys]  # closed when the last cursor using it is gone
        self.rows_path(key).unlink(missing_ok=True)
        self._row_files.forget(self.rows_path(key))
        path.unlink(missing_ok=True)

    def build(
        self,
        key: str,
        source: pa.Table | pa.RecordBatchReader | pads.Dataset | Path | str,
        *,
        order_by: Sequence[str],
    ) -> BuildInfo:
        """Write release `key` from an Arrow table, reader, dataset or Parquet path, sorted by `order_by`.

        Rows are sorted by the `order_by` columns (ascending, nulls first) and numbered by ``_row``;
        the rows file is written beside. The files appear under their final names only when
        complete. Conflict-free: an existing release under `key` is replaced atomically.
        """
        started = time.perf_counter()
        final = self.path(key)
        final_rows = self.rows_path(key)
        data: Any = pads.dataset(str(source), format="parquet") if isinstance(source, Path | str) else source
        names = list(data.schema.names)
        if ROW_COLUMN in names:
            raise Invalid(
                f"column {ROW_COLUMN} is reserved for the row number", detail={"column": ROW_COLUMN}
            )
        missing = [c for c in order_by if c not in names]
        if missing:
            raise Invalid(
                f"order_by column {missing[0]} is not a column of the release",
                detail={"column": missing[0], "columns": names},
            )
        self.root.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{key}.{uuid.uuid4().hex}.building")
        temp_rows = temp.with_name(temp.name + _ROWS_SUFFIX)
        try:
            con = duckdb.connect(
                str(temp), config={"threads": self.threads, "python_enable_replacements": False}
            )
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.register("source_data", data)
                order = ", ".join(f"{_quote(c)} ASC NULLS FIRST" for c in order_by) or "1"
                cols = ", ".join(_quote(c) for c in names)
                # Sort once into a temporary table; its rowid is then the position in that order.
                con.execute(f"CREATE TEMP TABLE sorted AS SELECT {cols} FROM source_data ORDER BY {order}")  # noqa: S608 (quoted names)
                con.execute(
                    f"CREATE TABLE {TABLE} AS SELECT {cols}, rowid::BIGINT AS {ROW_COLUMN} FROM sorted"  # noqa: S608 (quoted names)
                )
                con.execute("DROP TABLE sorted")
                con.unregister("source_data")
                rows = _scalar(con, f"SELECT count(*) FROM {TABLE}")  # noqa: S608 (quoted names)
                described = con.execute(f"DESCRIBE {TABLE}").fetchall()
                con.execute("CHECKPOINT")
                # Insertion order is _row order (preserve_insertion_order); write() checks it.
                reader = con.sql(f"SELECT * FROM {TABLE}").to_arrow_reader(rowfile.BATCH_ROWS)  # noqa: S608 (a constant)
                rowfile.write(temp_rows, reader, batch_rows=rowfile.BATCH_ROWS)
            finally:
                con.close()
            final_rows.unlink(missing_ok=True)  # never the old rows beside the new release
            os.replace(temp, final)
            os.replace(temp_rows, final_rows)
        finally:
            for leftover in (temp, temp.with_name(temp.name + ".wal"), temp_rows):
                leftover.unlink(missing_ok=True)
        with self._cache_lock:
            for keys in [k for k in self._cache if key in k]:
                del self._cache[keys]
        self._row_files.forget(final_rows)
        columns = {str(r[0]): str(r[1]) for r in described if r[0] != ROW_COLUMN}
        return BuildInfo(
            key=key,
            path=final,
            rows=rows,
            columns=columns,
            order_by=list(order_by),
            bytes=final.stat().st_size,
            seconds=time.perf_counter() - started,
            rows_file_bytes=final_rows.stat().st_size,
        )

    def row_count(self, key: str) -> int:
        """The number of rows in release `key` (NotFound if it was never built)."""
        cur = self._cursor({"r": key})
        try:
            return _scalar(cur, 'SELECT count(*) FROM "r"')
        finally:
            cur.close()

    def schema(self, key: str) -> pa.Schema:
        """The Arrow schema of release `key`, without the hidden ``_row`` column."""
        cur = self._cursor({"r": key})
        try:
            schema = cur.sql('SELECT * FROM "r" LIMIT 0').to_arrow_table().schema
        finally:
            cur.close()
        return schema.remove(schema.get_field_index(ROW_COLUMN))

    # --- queries ----------------------------------------------------------------------------------

    def read_rows(
        self, key: str, *, first: int, count: int, columns: Sequence[tuple[str, str]]
    ) -> pa.Table | None:
        """Rows ``first`` to ``first + count - 1`` of release `key` in its order (those that exist),
        from its rows file; None when the release has no rows file (then ask DuckDB).

        `columns` are pairs (name in the result, column of the release or ``_row``). The table is
        what ``execute`` would return for the same rows and columns: timestamps with a time zone
        carry this store's zone, as DuckDB's do here.
        """
        found = self._row_files.get(self.rows_path(key))
        if found is None:
            return None
        try:
            return found.read(first, count, columns, timezone=self.timezone)
        except KeyError:  # a column the file lacks: not this build's file; let DuckDB answer
            return None

    def execute(
        self,
        keys: Mapping[str, str],
        sql: str,
        params: Sequence[Any] = (),
        *,
        timeout: float,
        max_rows: int,
        include_row: bool = True,
    ) -> pa.Table:
        """Run `sql` with each view name in `keys` reading its release; at most `max_rows` rows.

        Reading stops after `max_rows` rows (ask for one more than a page to learn whether there is
        another). QueryTimeout after `timeout` seconds; QueryFailed when DuckDB refuses the query.
        With `include_row` false the views hide ``_row``.
        """
        batches: list[pa.RecordBatch] = []
        schema: pa.Schema | None = None
        rows = 0
        stream = self._stream(
            keys,
            sql,
            params,
            timeout=timeout,
            batch_rows=min(max(max_rows, 1), 65_536),
            include_row=include_row,
        )
        try:
            schema = next(stream)  # type: ignore[assignment]
            for batch in stream:
                assert isinstance(batch, pa.RecordBatch)
                if rows + batch.num_rows >= max_rows:
                    batches.append(batch.slice(0, max_rows - rows))
                    break
                batches.append(batch)
                rows += batch.num_rows
        finally:
            stream.close()
        assert isinstance(schema, pa.Schema)
        return pa.Table.from_batches(batches, schema=schema)

    def stream(
        self,
        keys: Mapping[str, str],
        sql: str,
        params: Sequence[Any] = (),
        *,
        timeout: float | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        include_row: bool = True,
    ) -> Iterator[pa.RecordBatch]:
        """The result of `sql` as Arrow batches, for downloads; `timeout` (if any) covers the whole stream.

        Close the iterator (or exhaust it) to release the cursor.
        """
        stream = self._stream(
            keys, sql, params, timeout=timeout, batch_rows=batch_rows, include_row=include_row
        )
        try:
            next(stream)  # the schema; raises now, not at the first batch, if the query is refused
        except BaseException:
            stream.close()
            raise
        return _batches(stream)

    def close(self) -> None:
        """Forget every cached connection and rows file (each closes when its last user is done)."""
        with self._cache_lock:
            self._cache.clear()
        self._row_files.forget()

    def _stream(
        self,
        keys: Mapping[str, str],
        sql: str,
        params: Sequence[Any],
        *,
        timeout: float | None,
        batch_rows: int,
        include_row: bool,
    ) -> Generator[pa.Schema | pa.RecordBatch, None, None]:
        cur = self._cursor(keys, include_row=include_row)
        done = threading.Event()
        timed_out = threading.Event()
        guard = threading.Lock()

        def watch(limit: float) -> None:
            # DuckDB drops an interrupt that arrives before the query starts executing (while a
            # long query is still being parsed and bound), so keep interrupting until it stops.
            if done.wait(limit):
                return
            while True:
                with guard:
                    if done.is_set():
                        return
                    timed_out.set()
                    cur.interrupt()
                if done.wait(_REINTERRUPT_SECONDS):
                    return

        if timeout is not None:
            threading.Thread(target=watch, args=(timeout,), daemon=True, name="zhishe-query-timeout").start()
        try:
            try:
                reader: pa.RecordBatchReader = cur.sql(sql, params=list(params)).to_arrow_reader(batch_rows)
                yield reader.schema
                yield from reader
            except (duckdb.Error, pa.ArrowException) as exc:
                if timed_out.is_set():
                    raise QueryTimeout(
                        f"the query ran longer than the time limit of {timeout or 0:g} seconds and was stopped",
                        detail={"limit": "timeout", "seconds": timeout},
                    ) from exc
                raise _failed(exc) from exc
        finally:
            with guard:
                done.set()
            cur.close()

    def _cursor(self, keys: Mapping[str, str], *, include_row: bool = True) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on a cached locked connection, with one temporary view per name in `keys`."""
        attached = self._attached(tuple(sorted(set(keys.values()))))
        hide = "" if include_row else f" EXCLUDE ({ROW_COLUMN})"
        temporary: list[tuple[str, str]] = []
        # A view is created once per connection for the first (name, release) asked for; a call
        # that gives the same name another meaning gets a temporary view, which shadows it.
        with attached.lock:
            for name, key in keys.items():
                wanted = (key, include_row)
                known = attached.views.get(name)
                body = f"SELECT *{hide} FROM {attached.databases[key]}.main.{TABLE}"  # noqa: S608 (quoted names)
                if known is None:
                    attached.con.execute(f"CREATE VIEW {_quote(name)} AS {body}")
                    attached.views[name] = wanted
                elif known != wanted:
                    temporary.append((name, body))
        cur = attached.con.cursor()
        try:
            for name, body in temporary:
                cur.execute(f"CREATE TEMP VIEW {_quote(name)} AS {body}")
        except BaseException:
            cur.close()
            raise
        return cur

    def _attached(self, keys: tuple[str, ...]) -> _Attached:
        with self._cache_lock:
            found = self._cache.get(keys)
            if found is not None:
                self._cache.move_to_end(keys)
                return found
        paths = {key: self.path(key) for key in keys}
        for key, path in paths.items():
            if not path.is_file():
                raise NotFound(f"release {key} is not in the query store", detail={"key": key})
        con = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "python_enable_replacements": False,
                "temp_directory": "",
                # Rows come back in file order (_row) unless a query says otherwise: soql relies on it.
                "preserve_insertion_order": True,
                "memory_limit": self.memory_limit,
                "threads": self.threads,
            },
        )
        try:
            databases: dict[str, str] = {}
            for i, (key, path) in enumerate(paths.items()):
                databases[key] = f"r{i}"
                literal = str(path.resolve()).replace("'", "''")
                con.execute(f"ATTACH '{literal}' AS r{i} (READ_ONLY)")
            # Time zones (ICU ships inside the DuckDB wheel): naive times in queries and date_trunc
            # are the platform's; GLOBAL, so that every cursor has it.
            con.execute("LOAD icu")
            con.execute(f"SET GLOBAL TimeZone = '{_zone_name(self.timezone)}'")
            # Attached first: from here on the connection reaches no file, extension or setting.
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            con.close()
            raise _failed(exc) from exc
        attached = _Attached(con=con, databases=databases, views={}, lock=threading.Lock())
        with self._cache_lock:
            existing = self._cache.setdefault(keys, attached)
            self._cache.move_to_end(keys)
            while len(self._cache) > self.max_connections:
                self._cache.popitem(last=False)
        if existing is not attached:
            con.close()
        return existing


def _batches(stream: Generator[pa.Schema | pa.RecordBatch, None, None]) -> Iterator[pa.RecordBatch]:
    try:
        for item in stream:
            assert isinstance(item, pa.RecordBatch)
            yield item
    finally:
        stream.close()


def _zone_name(name: str) -> str:
    """An IANA zone name checked against the zone database (so it is safe inside a literal)."""
    from zoneinfo import ZoneInfo

    ZoneInfo(name)  # raises on an unknown name
    if "'" in name:
        raise ValueError(f"bad time zone name {name!r}")
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _failed(exc: BaseException) -> QueryFailed:
    # DuckDB appends the offending line of the SQL ("LINE 1: ..."), which is ours, not the user's;
    # and paths on this machine are nobody's business.
    text = PATH.sub("<path>", clean(str(exc).split("\nLINE ", 1)[0]))
    if isinstance(exc, duckdb.OutOfMemoryException):
        text = f"the query needs more memory than is allowed: {text}"
    return QueryFailed(f"the query failed: {text}", detail={"error": type(exc).__name__})

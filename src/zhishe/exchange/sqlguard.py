"""The guard and runner for derived-dataset SQL: one read-only DuckDB query over granted views.

A department holding grants may define a derived dataset as one SQL query over the views of the
datasets it was granted. ``validate`` parses the text with sqlglot and refuses anything that is not
exactly one read-only query over those views. Syntax and functions are checked against allow-lists,
not deny-lists. It returns SQL re-generated from the syntax tree: comments, and anything that
sqlglot and DuckDB might read differently, never reach DuckDB.

``run`` validates again and executes that text in a fresh in-memory DuckDB connection (``connect``)
that cannot reach files, the network, extensions or its own settings. A query that somehow got past
the guard still could not see anything but the views registered on it.

This module is pure: no database session, no audit. The exchange service builds the views, checks
the grants and materialises the result.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import duckdb
import pyarrow as pa

from zhishe.core import sqlsafe
from zhishe.core.errors import Invalid
from zhishe.core.sqlsafe import (
    ACCEPTED,
    ALLOWED_FUNCTIONS,
    MAX_IN_ITEMS,
    MAX_NESTING,
    MAX_NODES,
    MAX_SQL_CHARS,
    MAX_TOKENS,
    PATH,
    clean,
)

__all__ = [
    "ALLOWED_FUNCTIONS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_THREADS",
    "MAX_IN_ITEMS",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_SQL_CHARS",
    "MAX_TOKENS",
    "connect",
    "referenced_views",
    "run",
    "validate",
]

# The allow-lists and limits live in core.sqlsafe, shared with the open-data SQL endpoint.
_DUCKDB_FUNCTIONS = sqlsafe.DUCKDB_FUNCTIONS
_SYNTAX_FUNCTIONS = sqlsafe.SYNTAX_FUNCTIONS

#: DuckDB's memory limit for one run, unless the caller passes another.
DEFAULT_MEMORY_LIMIT = "1GB"
#: DuckDB's thread count for one run, unless the caller passes another.
DEFAULT_THREADS = 2

_DIALECT = "duckdb"
_BATCH_ROWS = 65_536


def validate(sql: str, views: Collection[str]) -> str:
    """The normalised DuckDB SQL of `sql`; Invalid, naming the reason, unless it is one query over `views`.

    `views` are the granted view names, matched case-sensitively; names of CTEs defined in the query
    may be used too. The text returned is re-generated from the parsed query, without comments.
    """
    return _check(sql, views).sql


def referenced_views(sql: str, views: Collection[str]) -> list[str]:
    """The granted views a valid query reads, sorted (Invalid as `validate` when it is not valid)."""
    return _check(sql, views).views


def connect(
    *, memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int = DEFAULT_THREADS
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection that can reach nothing but what is registered on it.

    No file or network access, no extension installs or loads, no Python-variable scans, no spilling
    to disk; the time zone is UTC; and the configuration is locked, so no query can undo any of it.
    """
    con = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "python_enable_replacements": False,
            "temp_directory": "",
            "memory_limit": memory_limit,
            "threads": threads,
        },
    )
    try:
        # The time zone lives in an extension, so it cannot go in the connect config; it is set, and
        # the configuration locked, before the caller gets the connection.
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def run(
    sql: str,
    views: Mapping[str, Any],
    *,
    max_rows: int = 5_000_000,
    timeout_s: float = 120,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
) -> pa.Table:
    """Validate `sql` against `views` and run it on a locked connection; the result as an Arrow table.

    `views` maps each granted view name to a `pyarrow.Table`, `pyarrow.dataset.Dataset` or
    `pyarrow.RecordBatchReader` (a reader can be scanned once only). Only the views the query reads
    are registered. Invalid when the query is refused, fails in DuckDB, returns more than `max_rows`
    rows, runs longer than `timeout_s` seconds or needs more than `memory_limit`.
    """
    checked = _check(sql, views.keys())
    _refuse_case_clashes(checked.views)
    con = connect(memory_limit=memory_limit, threads=threads)
    try:
        _refuse_unless_one_select(con, checked.sql)
        for name in checked.views:
            con.register(name, views[name])
        return _execute(con, checked.sql, max_rows=max_rows, timeout_s=timeout_s, memory_limit=memory_limit)
    finally:
        con.close()


def _check(sql: str, views: Collection[str]) -> sqlsafe.Checked:
    return sqlsafe.check(sql, views, wording=sqlsafe.DERIVED)


# --- execution ------------------------------------------------------------------------------------


def _refuse_case_clashes(names: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise Invalid(
                f"views {other} and {name} differ only in case, which DuckDB cannot tell apart",
                detail={"reason": "views", "views": [other, name]},
            )


def _refuse_unless_one_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    # A second opinion from DuckDB's own parser on the text it is about to run.
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise _duckdb_invalid(exc) from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = [str(s.type.name) for s in statements]
        raise Invalid(
            f"DuckDB does not read this as one SELECT query ({', '.join(kinds)}); {ACCEPTED}",
            detail={"reason": "statement", "statements": kinds},
        )


def _execute(
    con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int, timeout_s: float, memory_limit: str
) -> pa.Table:
    done = threading.Event()
    timed_out = threading.Event()
    lock = threading.Lock()

    def interrupt() -> None:
        with lock:
            if done.is_set():
                return
            timed_out.set()
            con.interrupt()

    timer = threading.Timer(timeout_s, interrupt)
    timer.daemon = True
    timer.start()
    try:
        relation = con.sql(sql)
        if relation is None:  # not a query after all; _refuse_unless_one_select prevents it
            raise Invalid(ACCEPTED, detail={"reason": "statement"})
        reader = relation.to_arrow_reader(_BATCH_ROWS)
        batches = list(_capped(reader, max_rows))
        return pa.Table.from_batches(batches, schema=reader.schema)
    except (duckdb.Error, pa.ArrowException) as exc:
        if timed_out.is_set():
            raise Invalid(
                f"the query ran longer than the time limit of {timeout_s:g} seconds",
                detail={"reason": "limit", "limit": "timeout_s", "max": timeout_s},
            ) from exc
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise Invalid(
                f"the query needs more memory than the limit of {memory_limit}",
                detail={"reason": "limit", "limit": "memory_limit", "max": memory_limit},
            ) from exc
        raise _duckdb_invalid(exc) from exc
    finally:
        with lock:
            done.set()
        timer.cancel()


def _capped(reader: pa.RecordBatchReader, max_rows: int) -> Iterator[pa.RecordBatch]:
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if rows > max_rows:
            raise Invalid(
                f"the result has more than the limit (max_rows) of {max_rows:,} rows",
                detail={"reason": "limit", "limit": "max_rows", "max": max_rows},
            )
        yield batch


def _duckdb_invalid(exc: Exception) -> Invalid:
    # DuckDB appends the offending line of the normalised SQL ("LINE 1: ..."), which is not what the
    # user wrote; and paths on this machine are nobody's business.
    text = str(exc).split("\nLINE ", 1)[0]
    text = PATH.sub("<path>", clean(text))
    return Invalid(
        f"the query failed: {text}", detail={"reason": "query_failed", "error": type(exc).__name__}
    )

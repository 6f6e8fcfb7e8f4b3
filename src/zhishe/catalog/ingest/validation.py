"""Validating a file against a dataset's declared columns: `validate` and `load`.

The result is a typed Arrow table of the good rows (exactly `arrow_schema(columns)`), and for the
bad ones every problem with its row, column, value and reason. Value rules are in `values`.

`load` has a fast path for CSV and TSV: pyarrow.csv parses decimal, boolean and date columns
natively while it reads, and the remaining columns are converted from text with the same
vectorised rules `validate` uses. pyarrow's parsers accept a little more than the rules do (NaN and
infinity, the year 0), so the fast path checks for those; and it is stricter in places (no
whitespace around booleans, no one-digit months), in which case pyarrow raises and the file is
read again as text and validated in full. Whichever path runs, the outcome is the same (there is a
property test for it). Integers are always read as text: pyarrow's integer parser also accepts
hexadecimal.
"""

from __future__ import annotations

import functools
import os
import threading
import zoneinfo
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from zhishe.catalog.ingest._csv import ConversionFailed, CsvSource, open_csv, read_csv
from zhishe.catalog.ingest.errors import IngestError
from zhishe.catalog.ingest.keys import one_to
from zhishe.catalog.ingest.raw import RawTable, inspect_file, read_file, redetect
from zhishe.catalog.ingest.values import (
    FALSE_TOKENS,
    NULL_TOKENS,
    TRUE_TOKENS,
    Converted,
    convert_text,
    convert_typed,
    explain,
    shown,
)
from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema

__all__ = ["ImportIssue", "LoadResult", "check_columns", "load", "validate"]

_T = TypeVar("_T")
DEFAULT_MAX_ISSUES = 1000
_EMPTY = pa.chunked_array([], pa.string())
_NESTED_REASON = "is a JSON object or array; only point columns accept nested values"
_NATIVE: dict[ColumnType, pa.DataType] = {
    ColumnType.DECIMAL: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.DATE: pa.date32(),
}


def _case_variants(tokens: tuple[str, ...]) -> list[str]:
    return sorted({v for t in tokens for v in (t, t.lower(), t.upper(), t.capitalize())})


_TRUE_VALUES = _case_variants(TRUE_TOKENS)
_FALSE_VALUES = _case_variants(FALSE_TOKENS)


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One bad value: 1-based data row, column, the value as written, and why it was refused."""

    row: int
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    """What an import of one file produced."""

    #: The good rows, typed exactly as `arrow_schema(columns)`, columns in schema order.
    table: pa.Table
    #: 1-based data rows refused because at least one of their values is bad.
    bad_rows: list[int]
    #: The first `max_issues` problems, sorted by row and then by column (schema order).
    issues: list[ImportIssue]
    #: How many problems there are in all.
    issue_count: int
    #: Problems per column (only columns that have some).
    issues_by_column: dict[str, int]
    #: Data rows in the file.
    row_count: int
    format: str
    encoding: str
    #: For each row of `table`, its 1-based data row in the file (int64).
    row_numbers: pa.Array = field(repr=False)
    _rejects: pa.Table = field(repr=False)

    def reject_table(self) -> pa.Table:
        """The refused rows as written, with `_row` (1-based data row) and `_reason` columns.

        Every column is text, in file order; `_reason` lists each problem of the row as
        "column: reason", separated by "; ". Meant for a downloadable reject CSV.
        """
        return self._rejects


def check_columns(file_columns: list[str], columns: list[ColumnSpec]) -> None:
    """IngestError unless the file has exactly the declared columns (in any order)."""
    declared = [c.name for c in columns]
    if len(set(declared)) != len(declared):
        raise ValueError(f"the schema declares a column twice: {declared}")
    missing = [name for name in declared if name not in file_columns]
    extra = [name for name in file_columns if name not in declared]
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append("the file lacks the column(s) " + ", ".join(repr(n) for n in missing))
    if extra:
        listed = ", ".join(repr(n) for n in extra)
        parts.append(f"the file has column(s) the dataset does not declare: {listed}")
    hints = [f"{e!r} for {m!r}" for m in missing for e in extra if e.casefold() == m.casefold()]
    message = "; ".join(parts)
    if hints:
        message += " (names must match exactly; did you mean " + ", ".join(hints) + "?)"
    raise IngestError("column_mismatch", message, missing=missing, extra=extra)


def _empty_rejects(names: list[str]) -> pa.Table:
    fields = [pa.field(n, pa.string()) for n in names]
    fields += [pa.field("_row", pa.int64()), pa.field("_reason", pa.string())]
    return pa.schema(fields).empty_table()


def _result(
    *,
    columns: list[ColumnSpec],
    converted: list[Converted],
    text: pa.Table | None,
    file_columns: list[str],
    nested: dict[str, pa.Array],
    fmt: str,
    encoding: str,
    timezone: str,
    max_issues: int,
) -> LoadResult:
    schema = arrow_schema(columns)
    rows = len(converted[0].values) if converted else (text.num_rows if text is not None else 0)
    table = pa.Table.from_arrays([c.values for c in converted], schema=schema)
    counts = [int(pc.sum(c.bad).as_py() or 0) for c in converted]
    if not any(counts):
        return LoadResult(
            table=table,
            bad_rows=[],
            issues=[],
            issue_count=0,
            issues_by_column={},
            row_count=rows,
            format=fmt,
            encoding=encoding,
            row_numbers=one_to(rows),
            _rejects=_empty_rejects(file_columns),
        )
    assert text is not None, "bad values can only come from text"
    any_bad = converted[0].bad
    for c in converted[1:]:
        any_bad = pc.or_(any_bad, c.bad)
    keep = pc.invert(any_bad)
    bad_index = pc.indices_nonzero(any_bad)
    bad_count = len(bad_index)
    rejects = text.select(file_columns).take(bad_index)
    # Every bad row has at least one issue, so the first `max_issues` issues lie in as many rows.
    head = max(0, min(max_issues, bad_count))
    head_rows = pc.add(pc.cast(bad_index.slice(0, head), pa.int64()), 1)
    listed: list[tuple[int, int, str, str]] = []  # row, column position, value, reason
    reason: pa.Array | None = None
    for position, (spec, conv, count) in enumerate(zip(columns, converted, counts, strict=True)):
        if not count:
            continue
        in_bad_rows = _array(pc.filter(conv.bad, any_bad))  # aligned with the rows of `rejects`
        values = _array(pc.filter(rejects.column(spec.name), in_bad_rows))
        reasons = explain(spec.type, values, timezone=timezone)
        if spec.name in nested and spec.type != ColumnType.POINT:
            is_nested = pc.filter(pc.filter(nested[spec.name], any_bad), in_bad_rows)
            nested_reasons = pc.binary_join_element_wise(shown(values), _NESTED_REASON, " ")
            reasons = _array(pc.if_else(is_nested, nested_reasons, reasons))
        in_head = in_bad_rows.slice(0, head)
        listed_count = int(pc.sum(in_head).as_py() or 0)
        listed += zip(
            pc.filter(head_rows, in_head).to_pylist(),
            [position] * listed_count,
            values.slice(0, listed_count).to_pylist(),
            reasons.slice(0, listed_count).to_pylist(),
            strict=True,
        )
        said = pc.replace_with_mask(pa.nulls(bad_count, pa.string()), in_bad_rows, reasons)
        said = pc.binary_join_element_wise(f"{spec.name}: ", said, "")
        reason = (
            said if reason is None else pc.binary_join_element_wise(reason, said, "; ", null_handling="skip")
        )
    names = [c.name for c in columns]
    listed.sort(key=lambda issue: (issue[0], issue[1]))
    issues = [
        ImportIssue(row, names[col], value, why) for row, col, value, why in listed[: max(0, max_issues)]
    ]
    rejects = rejects.append_column("_row", pc.add(pc.cast(bad_index, pa.int64()), 1))
    rejects = rejects.append_column("_reason", reason)
    return LoadResult(
        table=table.filter(keep),
        bad_rows=rejects.column("_row").to_pylist(),
        issues=issues,
        issue_count=sum(counts),
        issues_by_column={spec.name: n for spec, n in zip(columns, counts, strict=True) if n},
        row_count=rows,
        format=fmt,
        encoding=encoding,
        row_numbers=pc.add(pc.cast(pc.indices_nonzero(keep), pa.int64()), 1),
        _rejects=rejects,
    )


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _check_timezone(timezone: str) -> None:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name such as 'Asia/Shanghai'") from exc


def _in_parallel(jobs: list[Callable[[], _T]]) -> list[_T]:
    """Run column conversions side by side: pyarrow.compute releases the GIL while it works."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        return list(pool.map(lambda job: job(), jobs))


def _conflict(spec: ColumnSpec, kind: pa.DataType) -> IngestError:
    return IngestError(
        "type_conflict",
        f"column {spec.name!r} holds {kind} values in the Parquet file, "
        f"but the dataset declares it {spec.type.value}",
        column=spec.name,
        file_type=str(kind),
        declared=spec.type.value,
    )


def _check_types(typed: pa.Table, columns: list[ColumnSpec]) -> None:
    """IngestError for the first Parquet column whose type cannot hold the declared type."""
    for spec in columns:
        empty = typed.column(spec.name).slice(0, 0)
        if convert_typed(spec.type, empty, timezone="UTC", text=_EMPTY) is None:
            raise _conflict(spec, empty.type)


def validate(
    raw: RawTable,
    columns: list[ColumnSpec],
    *,
    timezone: str,
    max_issues: int = DEFAULT_MAX_ISSUES,
) -> LoadResult:
    """Check and convert an already read file against the declared `columns`.

    Raises IngestError if the file's columns are not exactly the declared ones or (Parquet) a
    column's type conflicts with the declared type; every bad value is reported in the result.
    """
    _check_timezone(timezone)
    check_columns(raw.columns, columns)
    if raw.typed is not None:
        _check_types(raw.typed, columns)

    def convert(spec: ColumnSpec) -> Converted:
        text = raw.table.column(spec.name)
        if raw.typed is not None:
            conv = convert_typed(spec.type, raw.typed.column(spec.name), timezone=timezone, text=text)
            assert conv is not None
            return conv
        conv = convert_text(spec.type, text, timezone=timezone)
        nested = raw.nested.get(spec.name)
        if nested is not None and spec.type != ColumnType.POINT:
            values = pc.if_else(nested, pa.scalar(None, conv.values.type), conv.values)
            conv = Converted(values, pc.or_(conv.bad, nested))
        return conv

    converted = _in_parallel([functools.partial(convert, spec) for spec in columns])
    return _result(
        columns=columns,
        converted=converted,
        text=raw.table,
        file_columns=raw.columns,
        nested=raw.nested,
        fmt=raw.format,
        encoding=raw.encoding,
        timezone=timezone,
        max_issues=max_issues,
    )


#: Rows per piece when a text column is converted in pieces (see `_fast_csv`).
_PIECE_ROWS = 250_000


def _ranges(rows: int) -> list[tuple[int, int]]:
    """(start, length) of the pieces of `rows` rows: one per worker thread, at least `_PIECE_ROWS` each."""
    count = max(1, min(os.cpu_count() or 1, rows // _PIECE_ROWS))
    size = max(1, -(-rows // count))
    return [(start, min(size, rows - start)) for start in range(0, rows, size)] or [(0, 0)]


def _joined(parts: list[Converted]) -> Converted:
    """The pieces of one column, in order, as one converted column (no copy)."""
    if len(parts) == 1:
        return parts[0]
    values = pa.chunked_array([c for p in parts for c in p.values.chunks], parts[0].values.type)
    bad = pa.chunked_array([c for p in parts for c in p.bad.chunks], pa.bool_())
    return Converted(values, bad)


def _fast_csv(source: CsvSource, columns: list[ColumnSpec], *, fmt: str, timezone: str) -> LoadResult | None:
    """Read and convert a clean CSV/TSV in one pass; None when any value needs the full check."""
    declared = {c.name: c for c in columns}
    types = {name: _NATIVE.get(declared[name].type, pa.string()) for name in source.names}
    try:
        table = read_csv(
            source,
            types,
            null_values=["", *NULL_TOKENS],
            true_values=_TRUE_VALUES,
            false_values=_FALSE_VALUES,
        )
    except (ConversionFailed, UnicodeError):
        return None
    if table.num_rows == 0:
        raise IngestError("header_only", "the file has a header row but no data rows")

    declined = threading.Event()  # one bad value is enough: the other columns need not be done

    def convert(spec: ColumnSpec, start: int, length: int) -> Converted | None:
        if declined.is_set():
            return None
        column = table.column(spec.name).slice(start, length)
        if spec.type in _NATIVE:
            conv = convert_typed(spec.type, column, timezone=timezone)
        else:
            conv = convert_text(spec.type, column, timezone=timezone)
        if conv is None or pc.any(conv.bad).as_py():
            declined.set()
            return None
        return conv

    # Columns converted from text (integers, datetimes…) are cut into row ranges, so that one
    # slow column does not keep a single thread busy while the others wait. Every rule decides
    # row by row, so the pieces convert exactly as the whole column would.
    pieces = {
        spec.name: [(0, table.num_rows)] if spec.type in _NATIVE else _ranges(table.num_rows)
        for spec in columns
    }
    jobs: list[Callable[[], Converted | None]] = [
        functools.partial(convert, spec, start, length)
        for spec in columns
        for start, length in pieces[spec.name]
    ]
    results = iter(_in_parallel(jobs))
    converted: list[Converted] = []
    for spec in columns:
        parts = [next(results) for _ in pieces[spec.name]]
        if any(part is None for part in parts):
            return None
        converted.append(_joined([part for part in parts if part is not None]))
    return _result(
        columns=columns,
        converted=converted,
        text=None,
        file_columns=source.names,
        nested={},
        fmt=fmt,
        encoding=source.encoding,
        timezone=timezone,
        max_issues=0,
    )


def load(
    path: str | os.PathLike[str],
    columns: list[ColumnSpec],
    *,
    timezone: str,
    fmt: str | None = None,
    encoding: str | None = None,
    max_issues: int = DEFAULT_MAX_ISSUES,
) -> LoadResult:
    """Read a file and validate it against the declared `columns` in one go.

    `timezone` (an IANA name such as "Asia/Shanghai") is where naive date-times are local times.
    `fmt` and `encoding` are detected when not given. Raises IngestError when the file as a whole
    cannot be imported (see `read_raw` and `validate`).
    """
    _check_timezone(timezone)
    info = inspect_file(path, fmt=fmt, encoding=encoding)
    if info.format in ("csv", "tsv"):
        try:
            source = open_csv(info.path, fmt=info.format, encoding=info.encoding)
        except UnicodeError as exc:
            info = redetect(info, str(exc))
            source = open_csv(info.path, fmt=info.format, encoding=info.encoding)
        check_columns(source.names, columns)
        result = _fast_csv(source, columns, fmt=info.format, timezone=timezone)
        if result is not None:
            return result
    return validate(read_file(info), columns, timezone=timezone, max_issues=max_issues)

"""The platform's one read function, plus counts and chart aggregates, all run by DuckDB.

A read runs in two steps over one snapshot (the version's Arrow dataset): DuckDB finds the
page's row ids reading only the sort and filter columns, then the page's rows are fetched by
row id from the same snapshot, so wide rows are only read for the rows on the page. When the
first sort column has row-group statistics, the first step is tried with a bound on it that
lets the scan skip most row groups (see `_bounds`); a bounded answer is only used when it is
provably the right one.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from sqlglot import exp

from zhishe.catalog.lake._bounds import bound_for, column_ranges
from zhishe.catalog.lake._snapshot import Snapshot, as_filter, open_snapshot, select_names
from zhishe.catalog.lake._sql import SQL_TYPES, Known, Params, col, compile_filter, duck, run
from zhishe.catalog.lake._table import Uri, dataset
from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.lake.filters import Filter, filter_to_json
from zhishe.catalog.lake.paging import (
    SortKey,
    after_condition,
    decode_token,
    encode_token,
    order_by,
    shape_of,
    sort_keys,
)
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType

__all__ = [
    "MAX_AGGREGATE_ROWS",
    "MAX_PAGE",
    "Direction",
    "Measure",
    "Page",
    "TimeUnit",
    "aggregate",
    "count",
    "read",
]

MAX_PAGE = 10_000
MAX_AGGREGATE_ROWS = 100_000
Direction = Literal["asc", "desc"]
MeasureFunc = Literal["count", "sum", "avg", "min", "max"]
Measure = tuple[MeasureFunc, str | None]
TimeUnit = Literal["hour", "day", "week", "month", "quarter", "year"]
_TABLE = "t"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a read."""

    rows: pa.Table  #: the selected columns, stored Arrow types
    next: str | None  #: token for the following page, None on the last one
    total: int | None  #: rows matching the filter, when asked for
    version: int  #: the table version that was read


def read(
    uri: Uri,
    *,
    columns: list[ColumnSpec],
    version: int | None = None,
    select: list[str] | None = None,
    where: Filter | None = None,
    order: list[tuple[str, Direction]] | None = None,
    after: str | None = None,
    limit: int = 50,
    with_total: bool = False,
) -> Page:
    """One page of rows of the table at `uri` (latest version unless `version`).

    `select` names the columns to return (all declared ones by default; `ROW_ID` only when
    named), `where` filters, `order` sorts (always ending with the row id) and `after` is the
    previous page's `next` token. Raises LakeQueryError for unknown columns, bad values, a bad
    token or a limit outside 1..10,000, and LakeNotFound for a missing table or version.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise LakeQueryError(
            f"limit must be between 1 and {MAX_PAGE}, not {limit!r}", detail={"limit": limit}
        )
    snap = open_snapshot(uri, columns, version)
    known = snap.known
    names = select_names(select, known)
    condition = as_filter(where)
    keys = sort_keys(order, known)
    shape = shape_of(keys, filter_to_json(condition) if condition is not None else None)
    start = decode_token(after, keys, shape) if after is not None else None
    key_names = [k.spec.name for k in keys]
    scan = dataset(snap.table)

    def head_query(bound: Any) -> tuple[exp.Select, Params]:
        params = Params()
        conditions: list[exp.Expr] = []
        if condition is not None:
            conditions.append(compile_filter(condition, known, params))
        if start is not None:
            conditions.append(after_condition(keys, start, params))
        if bound is not None:
            conditions.append(_within(keys[0], bound, params))
        query = exp.select(*(col(n) for n in key_names)).from_(_TABLE)
        if conditions:
            query = query.where(exp.and_(*conditions))
        return query.order_by(*order_by(keys)).limit(limit + 1), params

    with duck({_TABLE: scan}) as con:
        for bound in _bounds(scan, snap, keys[0], start, limit):
            query, params = head_query(bound)
            head = run(con, query, params)
            if bound is None or head.num_rows > limit:
                break
        total = _count(con, condition, known) if with_total else None
    token = None
    if head.num_rows > limit:
        head = head.slice(0, limit)
        last = [head.column(n)[limit - 1].as_py() for n in key_names]
        token = encode_token(keys, last, shape)
    rows = _fetch(scan, head, names, key_names)
    return Page(rows=rows, next=token, total=total, version=snap.version)


def _bounds(
    scan: pds.FileSystemDataset, snap: Snapshot, first: SortKey, start: list[Any] | None, limit: int
) -> Iterator[Any]:
    """Bounds on the first sort key to try in turn, ending with None (no bound); see `_bounds`."""
    kind = ColumnType(first.spec.type)
    value = start[0] if start is not None else None
    usable = kind not in (ColumnType.DECIMAL, ColumnType.POINT) and not (start is not None and value is None)
    if usable:
        ranges = column_ranges(scan, str(snap.table.table_uri), first.spec.name)
        # Descending, NULLs come first: a bound would drop them unless the keyset already has.
        if first.desc and value is None and ranges.nulls:
            usable = False
    if usable:
        tried: list[Any] = []
        for need in ((limit + 1) * 2, (limit + 1) * 64):
            bound = bound_for(ranges, desc=first.desc, start=value, need=need)
            if bound is not None and bound not in tried:
                tried.append(bound)
                yield bound
    yield None


def _within(first: SortKey, bound: Any, params: Params) -> exp.Expr:
    """The first sort key no further than `bound` from the start of the page."""
    placeholder = params.bind(bound, SQL_TYPES[ColumnType(first.spec.type)])
    builder = exp.GTE if first.desc else exp.LTE
    return builder(this=col(first.spec.name), expression=placeholder)


def _fetch(scan: pds.Dataset, head: pa.Table, names: list[str], key_names: list[str]) -> pa.Table:
    """The page's rows in `head`'s order: from `head` itself when it has every column, else by row id."""
    if set(names) <= set(key_names):
        return head.select(names)
    ids = head.column(ROW_ID)
    wanted = [*(n for n in names if n != ROW_ID), ROW_ID]
    if head.num_rows == 0:
        return scan.schema.empty_table().select(wanted).select(names)
    id_array = ids.combine_chunks()
    lowest, highest = pc.min(id_array), pc.max(id_array)
    found = scan.to_table(
        columns=wanted,
        filter=(pds.field(ROW_ID) >= lowest)
        & (pds.field(ROW_ID) <= highest)
        & pds.field(ROW_ID).isin(id_array),
    )
    position = pc.index_in(found.column(ROW_ID), value_set=id_array)
    return found.take(pc.sort_indices(position)).select(names)


def _count(con: Any, condition: Filter | None, known: Known) -> int:
    params = Params()
    query = exp.select(exp.Count(this=exp.Star())).from_(_TABLE)
    if condition is not None:
        query = query.where(compile_filter(condition, known, params))
    return int(run(con, query, params).column(0)[0].as_py())


def count(
    uri: Uri, *, columns: list[ColumnSpec], version: int | None = None, where: Filter | None = None
) -> int:
    """The number of rows of a version matching `where` (all rows when None)."""
    snap = open_snapshot(uri, columns, version)
    condition = as_filter(where)
    if condition is None:
        return int(snap.table.count())
    with duck({_TABLE: dataset(snap.table)}) as con:
        return _count(con, condition, snap.known)


_NUMERIC = {ColumnType.INTEGER, ColumnType.DECIMAL}
_UNITS = ("hour", "day", "week", "month", "quarter", "year")


def aggregate(
    uri: Uri,
    *,
    columns: list[ColumnSpec],
    version: int | None = None,
    group_by: list[str],
    measures: list[Measure],
    where: Filter | None = None,
    time_bucket: tuple[str, TimeUnit] | None = None,
    limit: int = 1000,
    time_zone: str = "UTC",
) -> pa.Table:
    """Grouped measures for charts: one row per group (time bucket first, then `group_by`).

    Measures are ``(func, column)`` with func in count/sum/avg/min/max; ``("count", None)``
    counts rows and is named ``count``, the others ``<func>_<column>``. `time_bucket` truncates
    a date or datetime column to hour/day/week (ISO, Monday)/month/quarter/year; datetimes are
    bucketed in `time_zone` (an IANA name) and returned as the bucket's start in UTC. Rows come
    sorted by the group columns; at most `limit` of them (the schema metadata
    ``zhishe.truncated`` says ``true`` when there were more).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_AGGREGATE_ROWS:
        raise LakeQueryError(
            f"limit must be between 1 and {MAX_AGGREGATE_ROWS}, not {limit!r}", detail={"limit": limit}
        )
    snap = open_snapshot(uri, columns, version)
    known = snap.known
    params = Params()
    groups: list[tuple[str, exp.Expr]] = []
    if time_bucket is not None:
        groups.append(_bucket(time_bucket, known, params, time_zone))
    for name in group_by:
        spec = known.get(name, role="group-by column")
        if any(existing == name for existing, _ in groups):
            raise LakeQueryError(f"column {name!r} is grouped twice", detail={"column": name})
        groups.append((name, col(spec.name)))
    outputs = [*groups, *(_measure(m, known) for m in measures)]
    if not measures:
        raise LakeQueryError("an aggregate needs at least one measure", detail={})
    seen: set[str] = set()
    for alias, _ in outputs:
        if alias in seen:
            raise LakeQueryError(f"two outputs are named {alias!r}", detail={"column": alias})
        seen.add(alias)
    query = exp.select(*(exp.alias_(e, alias, quoted=True) for alias, e in outputs)).from_(_TABLE)
    condition = as_filter(where)
    if condition is not None:
        query = query.where(compile_filter(condition, known, params))
    if groups:
        query = query.group_by(*(e for _, e in groups))
        query = query.order_by(
            *(
                exp.Ordered(this=exp.column(alias, quoted=True), desc=False, nulls_first=False)
                for alias, _ in groups
            )
        )
    query = query.limit(limit + 1)
    with duck({_TABLE: dataset(snap.table)}) as con:
        result = run(con, query, params)
    truncated = result.num_rows > limit
    result = result.slice(0, limit)
    return result.replace_schema_metadata({"zhishe.truncated": "true" if truncated else "false"})


def _bucket(
    time_bucket: tuple[str, TimeUnit], known: Known, params: Params, time_zone: str
) -> tuple[str, exp.Expr]:
    if not isinstance(time_bucket, tuple | list) or len(time_bucket) != 2:
        raise LakeQueryError("time_bucket is a (column, unit) pair", detail={})
    name, unit = time_bucket
    spec = known.get(name, role="time column")
    kind = ColumnType(spec.type)
    if unit not in _UNITS:
        raise LakeQueryError(
            f"time unit {unit!r} is not one of {', '.join(_UNITS)}", detail={"unit": str(unit)}
        )
    if kind == ColumnType.DATE:
        if unit == "hour":
            raise LakeQueryError(f"column {name!r} holds dates; it has no hours", detail={"column": name})
        truncated = exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(unit), col(name)])
        return name, exp.Cast(this=truncated, to=exp.DataType.build("DATE"))
    if kind != ColumnType.DATETIME:
        raise LakeQueryError(
            f"time buckets need a date or datetime column; {name!r} is {kind.value}", detail={"column": name}
        )
    zone = _zone(time_zone)
    local = exp.Anonymous(this="timezone", expressions=[params.bind(zone, "VARCHAR"), col(name)])
    start = exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(unit), local])
    return name, exp.Anonymous(this="timezone", expressions=[params.bind(zone, "VARCHAR"), start])


def _zone(time_zone: str) -> str:
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise LakeQueryError(
            f"unknown time zone {time_zone!r}", detail={"time_zone": str(time_zone)}
        ) from exc
    return time_zone


def _measure(measure: Measure, known: Known) -> tuple[str, exp.Expr]:
    if not isinstance(measure, tuple | list) or len(measure) != 2:
        raise LakeQueryError(f"a measure is a (func, column) pair, not {measure!r}", detail={})
    func, name = measure
    if func == "count" and name is None:
        return "count", exp.Count(this=exp.Star())
    if func not in ("count", "sum", "avg", "min", "max"):
        raise LakeQueryError(
            f"measure {func!r} is not one of count, sum, avg, min, max", detail={"func": str(func)}
        )
    if name is None:
        raise LakeQueryError(f"measure {func} needs a column", detail={"func": func})
    spec = known.get(name, role="measure column")
    kind = ColumnType(spec.type)
    if func in ("sum", "avg") and kind not in _NUMERIC:
        raise LakeQueryError(
            f"{func} needs a numeric column; {name!r} is {kind.value}", detail={"column": name}
        )
    if func in ("min", "max") and kind == ColumnType.POINT:
        raise LakeQueryError(f"{func} of the point column {name!r} has no meaning", detail={"column": name})
    builders: dict[str, type[exp.Func]] = {
        "count": exp.Count,
        "sum": exp.Sum,
        "avg": exp.Avg,
        "min": exp.Min,
        "max": exp.Max,
    }
    measure_expr: exp.Expr = builders[func](this=col(spec.name))
    if func == "sum" and kind == ColumnType.INTEGER:  # DuckDB sums BIGINT as HUGEINT
        measure_expr = exp.Cast(this=measure_expr, to=exp.DataType.build("BIGINT"))
    return f"{func}_{name}", measure_expr

"""Data profile of a version: per-column statistics, duplicated keys, and freshness against a cadence.

Computed in DuckDB in a handful of scans: one for every column's counts, distinct counts and
min/max; one group-by per column that gets top values (text, integer, boolean and date
columns); one for duplicated keys; one for the time column's periods and their gaps.

Cadences are DCAT ``accrualPeriodicity`` values from the EU frequency vocabulary: the short
names ``hourly daily weekly monthly quarterly annual`` (and ``yearly``), or the authority URIs
such as ``http://publications.europa.eu/resource/authority/frequency/DAILY``. Periods start
at the calendar boundary (ISO weeks start on Monday) in `time_zone`. A dataset is overdue
when `now` is past the end of the period after its latest one: it missed a whole period.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from zhishe.catalog.lake._schema import key_names
from zhishe.catalog.lake._snapshot import open_snapshot
from zhishe.catalog.lake._sql import Known, Params, col, duck, run
from zhishe.catalog.lake._table import Uri, dataset
from zhishe.catalog.lake.errors import LakeQueryError
from zhishe.catalog.lake.render import json_value, rows_to_dicts
from zhishe.catalog.types import ColumnSpec, ColumnType
from zhishe.core.clock import now as clock_now

__all__ = ["CADENCES", "EXACT_DISTINCT_ROWS", "profile"]

#: Up to this many rows, distinct counts are exact; above, HyperLogLog estimates (about 2 %).
EXACT_DISTINCT_ROWS = 250_000
TOP_VALUES = 5
MAX_MISSING = 100
DUPLICATE_SAMPLE = 10
_FREQUENCY_URI = "http://publications.europa.eu/resource/authority/frequency/"

#: Cadence short name → the DuckDB date_trunc unit of its periods.
CADENCES: dict[str, str] = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "annual": "year",
    "yearly": "year",
}
#: EU frequencies that promise no regular period: reported without gaps or overdue.
_NOT_PERIODIC = frozenset(
    {"cont", "irreg", "irregular", "unknown", "never", "other", "op_datpro", "update_cont", "continuous"}
)
_STEP_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_STEP_DELTA = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
#: Versions up to this many rows are read into memory once and profiled there.
IN_MEMORY_ROWS = 2_000_000
#: Columns with more distinct values than this get no top values (they are not categories).
TOP_VALUES_MAX_DISTINCT = 10_000
_TOP_TYPES = {ColumnType.STRING, ColumnType.INTEGER, ColumnType.BOOLEAN, ColumnType.DATE}
_TABLE = "t"


def profile(
    uri: Uri,
    *,
    columns: list[ColumnSpec],
    version: int | None = None,
    time_column: str | None = None,
    cadence: str | None = None,
    now: datetime | None = None,
    time_zone: str = "UTC",
) -> dict[str, Any]:
    """A JSON-able profile of a version (see the module docstring for what it holds).

    `now` defaults to the platform clock; it must be aware. LakeQueryError for an unknown
    column, cadence or time zone.
    """
    snap = open_snapshot(uri, columns, version)
    row_count = int(snap.table.count())
    source: Any = dataset(snap.table)
    if row_count <= IN_MEMORY_ROWS:
        # one read of the files instead of one per statistic: the profile runs several queries
        source = source.to_table(columns=list(snap.known.by_name))
    return _profile(
        source,
        snap.known,
        columns,
        version=snap.version,
        row_count=row_count,
        time_column=time_column,
        cadence=cadence,
        now=now,
        time_zone=time_zone,
    )


def profile_table(
    table: pa.Table,
    *,
    columns: list[ColumnSpec],
    version: int,
    time_column: str | None = None,
    cadence: str | None = None,
    now: datetime | None = None,
    time_zone: str = "UTC",
) -> dict[str, Any]:
    """The same profile, of rows already in memory that are exactly the content of `version`
    (a first write, or a replace): no read of the lake is needed."""
    known = Known([c for c in columns if c.name in table.column_names])
    return _profile(
        table,
        known,
        columns,
        version=version,
        row_count=table.num_rows,
        time_column=time_column,
        cadence=cadence,
        now=now,
        time_zone=time_zone,
    )


def _profile(
    source: Any,
    known: Known,
    columns: list[ColumnSpec],
    *,
    version: int,
    row_count: int,
    time_column: str | None,
    cadence: str | None,
    now: datetime | None,
    time_zone: str,
) -> dict[str, Any]:
    time_spec = known.get(time_column, role="time column") if time_column is not None else None
    unit = _cadence_unit(cadence) if cadence is not None else None
    if time_spec is not None and ColumnType(time_spec.type) not in (ColumnType.DATE, ColumnType.DATETIME):
        raise LakeQueryError(
            f"the time column {time_spec.name!r} must hold dates or datetimes",
            detail={"column": time_spec.name},
        )
    if time_spec is not None and unit == "hour" and ColumnType(time_spec.type) == ColumnType.DATE:
        raise LakeQueryError(
            f"an hourly cadence needs datetimes; {time_spec.name!r} holds dates",
            detail={"column": time_spec.name},
        )
    moment = clock_now() if now is None else now
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise LakeQueryError("now must be an aware datetime", detail={})
    zone = _zone(time_zone)
    result: dict[str, Any] = {"version": version, "row_count": row_count}
    with duck({_TABLE: source}) as con:
        result["distinct_approximate"] = row_count > EXACT_DISTINCT_ROWS
        result["columns"] = _columns(con, known, row_count)
        keys = [k for k in key_names(columns) if k in known.by_name]
        if keys:
            result["keys"] = _duplicates(con, keys)
        if time_spec is not None:
            result["freshness"] = _freshness(con, time_spec, cadence, unit, moment, zone)
    return result


def _cadence_unit(cadence: str) -> str | None:
    """The date_trunc unit of a cadence, None for a non-periodic one; LakeQueryError if unknown."""
    name = cadence.strip()
    if name.startswith(_FREQUENCY_URI):
        name = name[len(_FREQUENCY_URI) :]
    name = name.lower()
    if name in CADENCES:
        return CADENCES[name]
    if name in _NOT_PERIODIC:
        return None
    raise LakeQueryError(
        f"cadence {cadence!r} is not one of {', '.join(CADENCES)} (or their EU frequency URIs)",
        detail={"cadence": cadence},
    )


def _zone(time_zone: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise LakeQueryError(
            f"unknown time zone {time_zone!r}", detail={"time_zone": str(time_zone)}
        ) from exc


def _columns(con: duckdb.DuckDBPyConnection, known: Known, row_count: int) -> dict[str, dict[str, Any]]:
    """Counts, distinct counts and min/max of every column in one scan, then top values per column."""
    distinct = "count_distinct" if row_count <= EXACT_DISTINCT_ROWS else "approx_count_distinct"
    outputs: list[exp.Expr] = []
    for i, spec in enumerate(known.specs):
        column = col(spec.name)
        outputs.append(exp.alias_(exp.Count(this=column), f"n{i}", quoted=True))
        counted = (
            exp.Count(this=exp.Distinct(expressions=[column.copy()]))
            if distinct == "count_distinct"
            else exp.Anonymous(this="approx_count_distinct", expressions=[column.copy()])
        )
        outputs.append(exp.alias_(counted, f"d{i}", quoted=True))
        kind = ColumnType(spec.type)
        if kind != ColumnType.POINT:
            low: exp.Expr = exp.Min(this=column.copy())
            high: exp.Expr = exp.Max(this=column.copy())
            if kind == ColumnType.DECIMAL:  # NaN would win max(); report the finite range
                finite = exp.Where(this=exp.Anonymous(this="isfinite", expressions=[column.copy()]))
                low, high = (
                    exp.Filter(this=low, expression=finite),
                    exp.Filter(this=high, expression=finite.copy()),
                )
            outputs.append(exp.alias_(low, f"lo{i}", quoted=True))
            outputs.append(exp.alias_(high, f"hi{i}", quoted=True))
    stats = rows_to_dicts(run(con, exp.select(*outputs).from_(_TABLE), Params()))[0]
    result: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(known.specs):
        kind = ColumnType(spec.type)
        non_null = int(stats[f"n{i}"])
        entry: dict[str, Any] = {
            "type": kind.value,
            "null_count": row_count - non_null,
            "null_rate": round((row_count - non_null) / row_count, 6) if row_count else 0.0,
            "distinct_count": int(stats[f"d{i}"]),
            "min": stats.get(f"lo{i}"),
            "max": stats.get(f"hi{i}"),
        }
        if kind in _TOP_TYPES:
            # top values describe categories; for near-unique columns (ids, timestamps) they say nothing
            categorical = non_null and entry["distinct_count"] <= TOP_VALUES_MAX_DISTINCT
            entry["top_values"] = _top_values(con, spec) if categorical else []
        result[spec.name] = entry
    return result


def _top_values(con: duckdb.DuckDBPyConnection, spec: ColumnSpec) -> list[dict[str, Any]]:
    column = col(spec.name)
    query = (
        exp.select(exp.alias_(column, "value", quoted=True), exp.alias_(exp.Count(this=exp.Star()), "count"))
        .from_(_TABLE)
        .where(exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())))
        .group_by(column.copy())
        .order_by(exp.Ordered(this=exp.column("count"), desc=True), exp.Ordered(this=exp.column("value")))
        .limit(TOP_VALUES)
    )
    return [
        {"value": row["value"], "count": int(row["count"])}
        for row in rows_to_dicts(run(con, query, Params()))
    ]


def _duplicates(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> dict[str, Any]:
    """How many key values occur more than once, the rows they cover, and the most repeated ones."""
    grouped = (
        exp.select(*(col(k) for k in keys), exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True))
        .from_(_TABLE)
        .group_by(*(col(k) for k in keys))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )
    over = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[])
    rows_over = exp.Window(this=exp.Sum(this=exp.column("n", quoted=True)), partition_by=[])
    query = (
        exp.select(
            *(col(k) for k in keys),
            exp.column("n", quoted=True),
            exp.alias_(over, "keys_total", quoted=True),
            exp.alias_(rows_over, "rows_total", quoted=True),
        )
        .from_(exp.Subquery(this=grouped, alias=exp.TableAlias(this=exp.to_identifier("g"))))
        .order_by(exp.Ordered(this=exp.column("n", quoted=True), desc=True), *(col(k) for k in keys))
        .limit(DUPLICATE_SAMPLE)
    )
    rows = rows_to_dicts(run(con, query, Params()))
    return {
        "columns": list(keys),
        "duplicate_count": int(rows[0]["keys_total"]) if rows else 0,
        "duplicate_rows": int(rows[0]["rows_total"]) if rows else 0,
        "sample": [{"key": {k: row[k] for k in keys}, "count": int(row["n"])} for row in rows],
    }


def _freshness(
    con: duckdb.DuckDBPyConnection,
    spec: ColumnSpec,
    cadence: str | None,
    unit: str | None,
    now: datetime,
    zone: zoneinfo.ZoneInfo,
) -> dict[str, Any]:
    """Latest period, gaps between the first and latest periods, next period and overdue."""
    is_date = ColumnType(spec.type) == ColumnType.DATE
    info: dict[str, Any] = {"time_column": spec.name, "cadence": cadence, "periodic": unit is not None}
    bounds = exp.select(
        exp.alias_(exp.Min(this=col(spec.name)), "first", quoted=True),
        exp.alias_(exp.Max(this=col(spec.name)), "latest", quoted=True),
    ).from_(_TABLE)
    edge = run(con, bounds, Params()).to_pylist()[0]
    info["first_value"] = json_value(edge["first"])
    info["latest_value"] = json_value(edge["latest"])
    if unit is None:
        return info
    if edge["latest"] is None:
        info.update(
            latest_period=None, expected_next_period=None, overdue=True, missing_periods=[], missing_count=0
        )
        return info
    latest = _period_start(edge["latest"], unit, zone)
    params = Params()
    rows = run(con, _missing_query(spec, unit, zone, is_date, params), params).to_pylist()
    missing = [r["p"] for r in rows]
    next_start = _add(latest, unit)
    info.update(
        latest_period=_render_period(latest, zone, is_date=is_date),
        expected_next_period=_render_period(next_start, zone, is_date=is_date),
        overdue=now >= _add(next_start, unit).replace(tzinfo=zone),
        # the instant after which the dataset is overdue (the end of the period after the latest)
        overdue_after=_add(next_start, unit).replace(tzinfo=zone).astimezone(UTC).isoformat(),
        missing_periods=[_render_period(p, zone, is_date=is_date) for p in missing],
        missing_count=int(rows[0]["total"]) if rows else 0,
    )
    return info


def _missing_query(
    spec: ColumnSpec, unit: str, zone: zoneinfo.ZoneInfo, is_date: bool, params: Params
) -> exp.Expr:
    """Period starts (naive, local to `zone`) between the first and latest periods that have no rows.

    One row per missing period, the first `MAX_MISSING` of them, each with the total count.
    """
    local: exp.Expr = col(spec.name)
    if not is_date:  # periods follow the wall clock of `zone`
        local = exp.Anonymous(this="timezone", expressions=[params.bind(zone.key, "VARCHAR"), local])
    start = exp.Cast(
        this=exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(unit), local]),
        to=exp.DataType.build("TIMESTAMP"),
    )
    p = exp.column("p", quoted=True)
    periods = (
        exp.select(exp.alias_(start, "p", quoted=True))
        .distinct()
        .from_(_TABLE)
        .where(exp.Not(this=exp.Is(this=col(spec.name), expression=exp.Null())))
    )
    series = exp.Anonymous(
        this="generate_series", expressions=[exp.Min(this=p.copy()), exp.Max(this=p.copy()), _interval(unit)]
    )
    expected = exp.select(exp.alias_(exp.Unnest(expressions=[series]), "p", quoted=True)).from_("periods")
    missing = exp.Except(this=expected, expression=exp.select(p.copy()).from_("periods"))
    return (
        exp.select(p.copy(), exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "total", quoted=True))
        .from_(exp.Subquery(this=missing, alias=exp.TableAlias(this=exp.to_identifier("m"))))
        .with_("periods", as_=periods)
        .order_by(p.copy())
        .limit(MAX_MISSING)
    )


def _interval(unit: str) -> exp.Expr:
    amounts = {"hour": "1 hour", "day": "1 day", "week": "7 days", "month": "1 month", "quarter": "3 months"}
    return exp.Interval(this=exp.Literal.string(amounts.get(unit, "1 year")))


def _period_start(value: Any, unit: str, zone: zoneinfo.ZoneInfo) -> datetime:
    """The naive local start of the period holding `value` (a date or an aware datetime)."""
    if isinstance(value, datetime):
        moment = value.astimezone(zone).replace(tzinfo=None)
    else:
        moment = datetime(value.year, value.month, value.day)  # noqa: DTZ001 - naive local wall time
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


def _add(start: datetime, unit: str) -> datetime:
    """The start of the period after the one starting at `start` (naive local wall time)."""
    if unit in _STEP_DELTA:
        return start + _STEP_DELTA[unit]
    months = start.month - 1 + _STEP_MONTHS[unit]
    return start.replace(year=start.year + months // 12, month=months % 12 + 1)


def _render_period(start: datetime, zone: zoneinfo.ZoneInfo, *, is_date: bool) -> str:
    """A period start as JSON: an ISO date for date columns, an ISO UTC datetime otherwise."""
    if is_date:
        return start.date().isoformat()
    return start.replace(tzinfo=zone).astimezone(UTC).isoformat()

"""Public reads of published releases: SoQL queries, the SQL endpoint and downloads.

Every read goes to the release's serving copy (``opendata.store``) with SQL that ``opendata.soql``
or ``opendata.sqlapi`` built from an allow-listed syntax tree, under the per-request time limit;
a page that is a range of positions in the release's own order (``soql.RowRange``) is read from
the release's rows file instead, with the same result.
These reads are the public portal: they are counted (API calls, downloads) but not audited.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from zhishe.core.config import get_settings
from zhishe.core.errors import Invalid
from zhishe.core.i18n import T
from zhishe.opendata import formats, service, soql, sqlapi, usage
from zhishe.opendata.jsonrows import json_rows
from zhishe.opendata.models import Release
from zhishe.opendata.store import ROW_COLUMN, TABLE, QueryTimeout

__all__ = [
    "Download",
    "QueryResult",
    "QuickPage",
    "SqlResult",
    "answer_quick",
    "download",
    "forget_totals",
    "plan_quick",
    "run",
    "run_cached",
    "run_quick",
    "run_sql",
]

#: The share of the time left that a query may spend on its exact total before estimating it.
_COUNT_SHARE = 0.5
#: Releases up to this size get exact totals; bigger ones estimate filtered totals from a sample.
EXACT_ROWS = 1_000_000
#: How long a big release may spend counting the groups of a grouped query.
GROUP_COUNT_SECONDS = 0.2
_FILTERS = frozenset({"$where", "$q", "$having"})
#: The most rows, and the most characters of parameters, of a page ``run_quick`` answers.
QUICK_ROWS = 200
QUICK_TEXT_CHARS = 1_000
_QUICK_PARAMETERS = frozenset({"$select", "$order", "$limit", "$offset", soql.NEXT})


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One page of a SoQL query, with its total and how to get the next page."""

    release: service.ServedRelease
    table: pa.Table
    columns: list[str]
    types: dict[str, str]
    total: int | None
    estimated: bool
    next_token: str | None
    next_offset: int | None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The page's rows as JSON-ready dicts."""
        return json_rows(_whole_numbers(self.table), get_settings().tz)


@dataclass(frozen=True, slots=True)
class SqlResult:
    """The rows of a SQL-endpoint query, and whether the row cap cut them off."""

    table: pa.Table
    truncated: bool
    row_cap: int

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready dicts."""
        return json_rows(_whole_numbers(self.table), get_settings().tz)


@dataclass(frozen=True, slots=True)
class Download:
    """A download ready to stream."""

    filename: str
    media_type: str
    chunks: Iterator[bytes]


def _whole_numbers(table: pa.Table) -> pa.Table:
    """`table` with its whole-number decimals (DuckDB's HUGEINT, e.g. the sum of an integer column)
    as 64-bit integers where they fit, so that JSON shows them as numbers rather than as text."""
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            try:
                whole = table.column(index).cast(pa.int64())
            except pa.ArrowInvalid:  # too large for 64 bits: keep it exact, as text
                continue
            table = table.set_column(index, pa.field(field.name, pa.int64()), whole)
    return table


def column_types(release: Release) -> dict[str, str]:
    """Column name → type of a release."""
    return {str(c["name"]): str(c["type"]) for c in release.columns}


def run(
    *,
    session: Session,
    slug: str,
    params: Mapping[str, str],
    version: int | None = None,
    want_total: bool = True,
    count_api_call: bool = True,
) -> QueryResult:
    """One page of a SoQL query on release ``version`` (the newest when None) of an open dataset."""
    release = service.served_release(session, slug, version)
    return _run(release, params, want_total=want_total, count_api_call=count_api_call)


def run_cached(*, slug: str, params: Mapping[str, str], version: int | None = None) -> QueryResult | None:
    """``run`` without a database session, when this process knows the release already
    (``service.cached_release``); None when it does not (then use ``run``)."""
    release = service.cached_release(slug, version)
    if release is None:
        return None
    return _run(release, params, want_total=True, count_api_call=True)


@dataclass(frozen=True, slots=True)
class QuickPage:
    """A short page read by position and not answered yet (see ``plan_quick``)."""

    release: service.ServedRelease
    params: Mapping[str, str]
    compiled: soql.CompiledQuery
    table: pa.Table


def plan_quick(*, slug: str, params: Mapping[str, str], version: int | None = None) -> QuickPage | None:
    """The page of ``run`` read at once, when that needs no I/O and little time, without counting it
    or any other side effect: the release is known to this process, the query is only
    ``$select``, ``$order``, ``$limit``, ``$offset`` and ``$next`` in at most ``QUICK_TEXT_CHARS``
    characters, and its page is a range of positions of at most ``QUICK_ROWS`` rows with a rows
    file to read it from. None otherwise, also for a query the compiler refuses (then ``run``
    reports it)."""
    if not params.keys() <= _QUICK_PARAMETERS or sum(map(len, params.values())) > QUICK_TEXT_CHARS:
        return None
    release = service.cached_release(slug, version)
    if release is None:
        return None
    try:
        compiled = soql.compile_query(
            params, release.types, sort_key=release.order_by, timezone=get_settings().timezone
        )
    except soql.BadQuery:
        return None
    if compiled.row_range is None or compiled.row_range.count > QUICK_ROWS + 1:
        return None
    table = _by_position(service.release_store(), release.store_key, compiled.row_range)
    if table is None:
        return None
    return QuickPage(release=release, params=params, compiled=compiled, table=table)


def answer_quick(page: QuickPage) -> QueryResult:
    """The answer to a page from ``plan_quick``, counted as an API call."""
    return _answer(page.release, page.params, page.compiled, page.table, want_total=True, count_api_call=True)


def run_quick(*, slug: str, params: Mapping[str, str], version: int | None = None) -> QueryResult | None:
    """``run`` when ``plan_quick`` finds the page (so the caller may answer on the event loop);
    None otherwise (then use ``run`` or ``run_cached`` in a worker thread)."""
    page = plan_quick(slug=slug, params=params, version=version)
    return None if page is None else answer_quick(page)


def _run(
    release: service.ServedRelease, params: Mapping[str, str], *, want_total: bool, count_api_call: bool
) -> QueryResult:
    compiled = soql.compile_query(
        params, release.types, sort_key=release.order_by, timezone=get_settings().timezone
    )
    store = service.release_store()
    limit = get_settings().opendata_query_timeout
    keys = {TABLE: release.store_key}
    started = time.monotonic()
    result = _by_position(store, release.store_key, compiled.row_range)
    if result is None:
        result = store.execute(
            keys, compiled.sql, compiled.params, timeout=limit, max_rows=compiled.fetch_rows
        )
    left = limit - (time.monotonic() - started)
    return _answer(
        release, params, compiled, result, want_total=want_total, count_api_call=count_api_call, left=left
    )


def _answer(
    release: service.ServedRelease,
    params: Mapping[str, str],
    compiled: soql.CompiledQuery,
    result: pa.Table,
    *,
    want_total: bool,
    count_api_call: bool,
    left: float | None = None,
) -> QueryResult:
    """The page in `result`, with its total (within `left` seconds, the time limit by default)."""
    store = service.release_store()
    keys = {TABLE: release.store_key}
    page = compiled.page(result)
    if left is None:
        left = get_settings().opendata_query_timeout
    total, estimated = (
        _cached_total(store, keys, compiled, release, params, left) if want_total else (None, False)
    )
    if count_api_call:
        usage.count(release.dataset_id, api_calls=1)
    shown = page.rows
    return QueryResult(
        release=release,
        table=shown,
        columns=list(shown.column_names),
        types=dict(compiled.columns),
        total=total,
        estimated=estimated,
        next_token=page.next,
        next_offset=page.next_offset,
    )


def _by_position(store: Any, key: str, row_range: soql.RowRange | None) -> pa.Table | None:
    """The page read by position from the release's rows file, when it is a range of positions and
    the file is there (None otherwise: then DuckDB runs the query)."""
    if row_range is None:
        return None
    table: pa.Table | None = store.read_rows(
        key, first=row_range.first, count=row_range.count, columns=row_range.columns
    )
    return table


#: Totals already found, by release and filter. A release never changes, so neither do they; a
#: client paging through a filter pays for its total once, not on every page.
_TOTALS: OrderedDict[tuple[str, str, str], tuple[int, bool]] = OrderedDict()
_TOTALS_KEPT = 4096
_totals_lock = threading.Lock()


def forget_totals() -> None:
    """Drop the remembered totals (tests: release keys restart with each database)."""
    with _totals_lock:
        _TOTALS.clear()


def _cached_total(
    store: Any, keys: dict[str, str], compiled: Any, release: Any, params: Mapping[str, str], left: float
) -> tuple[int | None, bool]:
    sql, values = compiled.count_sql()
    key = (release.store_key, sql, repr(values))
    with _totals_lock:
        hit = _TOTALS.get(key)
        if hit is not None:
            _TOTALS.move_to_end(key)
            return hit
    total, estimated = _total(store, keys, compiled, release, params, left)
    if total is not None:
        with _totals_lock:
            _TOTALS[key] = (total, estimated)
            while len(_TOTALS) > _TOTALS_KEPT:
                _TOTALS.popitem(last=False)
    return total, estimated


def _total(
    store: Any, keys: dict[str, str], compiled: Any, release: Any, params: Mapping[str, str], left: float
) -> tuple[int | None, bool]:
    """The total of matching rows, and whether it is estimated.

    Without a filter it is the release's row count. On a release of up to ``EXACT_ROWS`` rows it
    is counted, within half of the time left. On a bigger one a filtered total is estimated from a
    sample (an exact count would scan every row, costing more than the page itself), and a number
    of groups is counted only if that takes under ``GROUP_COUNT_SECONDS``; else it is left out.
    """
    filtered = any(not name.startswith("$") or name in _FILTERS for name in params)
    if compiled.keyset and not filtered:
        return release.row_count, False
    left = max(left, 0.05)
    if release.row_count > EXACT_ROWS:
        if not compiled.keyset:
            return _count(store, keys, compiled, min(left * _COUNT_SHARE, GROUP_COUNT_SECONDS)), False
        if compiled.estimate_sql(release.row_count) is not None:
            return _estimate(store, keys, compiled, release.row_count, left)
    total = _count(store, keys, compiled, left * _COUNT_SHARE)
    if total is None:
        return _estimate(store, keys, compiled, release.row_count, left)
    return total, False


def _estimate(
    store: Any, keys: dict[str, str], compiled: Any, rows: int, budget: float
) -> tuple[int | None, bool]:
    """The total estimated from a sample; left unknown (None) when even that runs out of time, as
    the page itself is ready and must not be lost to a 408."""
    estimate = compiled.estimate_sql(rows)
    if estimate is None:
        return None, False
    try:
        return _scalar(store.execute(keys, estimate[0], estimate[1], timeout=budget, max_rows=1)), True
    except QueryTimeout:
        return None, False


def _count(store: Any, keys: dict[str, str], compiled: Any, budget: float) -> int | None:
    sql, values = compiled.count_sql()
    try:
        return _scalar(store.execute(keys, sql, values, timeout=max(budget, 0.01), max_rows=1))
    except QueryTimeout:
        return None


def _scalar(table: pa.Table) -> int:
    value = table.column(0)[0].as_py() if table.num_rows and table.num_columns else 0
    return int(value or 0)


def sql_tables(session: Session) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Names the SQL endpoint knows (``slug`` for the newest release, ``slug@N`` for release N),
    with their columns and release keys."""
    tables: dict[str, dict[str, str]] = {}
    keys: dict[str, str] = {}
    for opened in service.published_datasets(session):
        slug = opened.dataset.slug
        for release in opened.releases:
            names = [f"{slug}@{release.number}"] + ([slug] if release is opened.latest else [])
            for name in names:
                tables[name] = column_types(release)
                keys[name] = release.store_key
    return tables, keys


def run_sql(*, session: Session, text: str | bytes, rows: int | str | None = None) -> SqlResult:
    """One read-only SELECT over published releases, under the time limit and a row cap."""
    tables, keys = sql_tables(session)
    checked = sqlapi.validate_sql(text, tables, keys=keys, rows=rows)
    result = service.release_store().execute(
        checked.keys,
        checked.sql,
        timeout=get_settings().opendata_query_timeout,
        max_rows=checked.fetch_rows,
        include_row=False,
    )
    table, truncated = checked.cut(result)
    return SqlResult(table=table, truncated=truncated, row_cap=checked.row_cap)


def download(
    *,
    session: Session,
    slug: str,
    fmt: str,
    version: int | None = None,
    bom: bool = False,
    count: bool = True,
) -> Download:
    """A whole release in ``fmt``, streamed batch by batch (never built in memory)."""
    if fmt not in formats.FORMATS:
        raise Invalid(
            T("unknown format {fmt}; use {formats}", fmt=fmt, formats=", ".join(formats.FORMATS)),
            detail={"parameter": "format"},
        )
    release = service.served_release(session, slug, version)
    store = service.release_store()
    schema = store.schema(release.store_key)
    names = ", ".join('"' + n.replace('"', '""') + '"' for n in schema.names if n != ROW_COLUMN)
    sql = f'SELECT {names} FROM "{TABLE}" ORDER BY "{ROW_COLUMN}"'  # noqa: S608 - names come from the file's own schema
    chunks = formats.stream(
        fmt,
        store.stream({TABLE: release.store_key}, sql),
        schema,
        bom=bom,
        point_column=release.point_column if fmt == "geojson" else None,
        title=release.title_zh,
        tz=get_settings().timezone,
        row_count=release.row_count,
    )
    if count:
        usage.count(release.dataset_id, downloads=1)
    return Download(
        filename=formats.filename(slug, release.number or 0, fmt),
        media_type=formats.media_type(fmt),
        chunks=chunks,
    )

"""SoQL query parameters → one safe, parameterised DuckDB query over a release.

Implements the Socrata Query Language as documented at dev.socrata.com/docs/queries/: ``$select``
(aliases with ``AS``, aggregates), ``$where``, ``$order`` (``ASC``/``DESC``, several keys),
``$group``, ``$having``, ``$limit`` (default 1,000, at most 50,000: more is refused, not clamped),
``$offset``, ``$q`` (every word must occur, case-insensitively, in some text column; a substring
match, so Chinese works) and simple filters ``column=value``. Besides, ``$next`` carries a keyset
token (``opendata.paging``).

Each parameter is parsed by sqlglot and compiled by this module's own generator, which knows only
an allow-list of syntax over the release's columns: comparisons, ``between``, ``in``, ``like`` /
``not like``, ``is [not] null``, ``and``/``or``/``not``, ``+ - * / %``, parentheses, literals,
``count/sum/avg/min/max``, ``lower/upper``, ``starts_with``, ``date_trunc_ymd/_ym/_y``,
``date_trunc('month', col)`` and ``within_circle(point, lat, lon, metres)``. Column names in the
output are the release's own, quoted; text literals become parameters; numbers are re-written from
their parsed values. User text never reaches DuckDB. Every refusal is ``BadQuery`` (HTTP 400),
naming the parameter in the message and in ``detail["parameter"]``.

Paging: without ``$group`` or aggregates, pages are ordered by the ``$order`` keys and then the
hidden ``_row``, and ``CompiledQuery.page`` builds the ``$next`` token from the last row, so page
1,000 costs what page 1 costs. Grouped queries page by ``$offset`` only. A page with no filter and
no expression, in the release's own order, is a range of ``_row``: ``CompiledQuery.row_range``
says which, so that the store can read it by position instead of running the SQL.

Everything but the paging parameters (``$next``, ``$offset``, ``$limit``) is compiled once per
distinct query and kept (``_Shape``), so the next page of a query is not parsed again.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokenizer_core import TokenType

from zhishe.core.errors import Invalid
from zhishe.opendata import paging
from zhishe.opendata.store import ROW_COLUMN

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_LIMIT",
    "ESTIMATE_SAMPLE_PERCENT",
    "ESTIMATE_SAMPLE_ROWS",
    "MAX_DEPTH",
    "MAX_IN_ITEMS",
    "MAX_LIMIT",
    "MAX_NESTING",
    "MAX_PARAM_BYTES",
    "NEXT",
    "PARAMETERS",
    "BadQuery",
    "CompiledQuery",
    "Page",
    "RowRange",
    "check_text",
    "compile_query",
]

#: The column types a release declares, and what each compiles to.
COLUMN_TYPES = frozenset({"string", "integer", "decimal", "boolean", "date", "datetime", "point"})
#: The SoQL parameters understood.
PARAMETERS = ("$select", "$where", "$order", "$group", "$having", "$limit", "$offset", "$q")
#: The parameter carrying a keyset token.
NEXT = "$next"
DEFAULT_LIMIT = 1_000
MAX_LIMIT = 50_000
#: The largest ``$offset`` accepted (use ``$next`` to go further).
MAX_OFFSET = 100_000_000
#: The highest first position a page is read from by position (a forged token can ask for any).
MAX_ROW_POSITION = 2**62
#: The longest parameter accepted, in UTF-8 bytes.
MAX_PARAM_BYTES = 32_768
#: The most tokens in one parameter.
MAX_TOKENS = 25_000
#: The deepest bracket nesting, or longest run of prefix operators (``NOT NOT …``), accepted.
MAX_NESTING = 32
#: The deepest expression tree accepted.
MAX_DEPTH = 64
#: The most items in one ``in (...)`` list.
MAX_IN_ITEMS = 1_000
#: The most ``$order`` keys, ``$select`` items and ``$q`` words.
MAX_ORDER_KEYS = 8
MAX_SELECT_ITEMS = 200
MAX_Q_WORDS = 16
#: The least share of a release's row vectors (2,048 rows each) that ``estimate_sql`` reads: system
#: sampling skips whole vectors, so an estimate costs a hundredth of a scan (a reservoir sample
#: would read every row).
ESTIMATE_SAMPLE_PERCENT = 1.0
#: About how many rows an estimate samples.
ESTIMATE_SAMPLE_ROWS = 100_000

_DIALECT = "duckdb"
#: The parameters that say where a page starts or how long it is; the rest is the query's shape.
_PAGING = frozenset({NEXT, "$offset", "$limit"})
#: Shapes of queries kept, so that the next page of a query (or the same page again) is not parsed
#: and compiled again; only queries whose texts total up to ``_CACHED_TEXT_CHARS`` characters.
_CACHED_SHAPES = 1_024
_CACHED_TEXT_CHARS = 4_000
_SHAPES: OrderedDict[tuple[Any, ...], _Shape] = OrderedDict()
_shapes_lock = threading.Lock()
_INT64 = 2**63 - 1
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TYPES = {
    "string": "text",
    "integer": "number",
    "decimal": "number",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "point": "point",
}
_TRUNC_UNITS = frozenset({"year", "quarter", "month", "week", "day", "hour", "minute", "second"})
_SOQL_TRUNC = {"date_trunc_y": "year", "date_trunc_ym": "month", "date_trunc_ymd": "day"}
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_ARITHMETIC: dict[type[exp.Expr], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
_AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
}
_FUNCTIONS_SHOWN = (
    "count, sum, avg, min, max, lower, upper, starts_with, date_trunc_ymd, date_trunc_ym, date_trunc_y, "
    "date_trunc, within_circle"
)
_PREFIX = frozenset({TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE})
_BRACKETS = {TokenType.L_PAREN: 1, TokenType.L_BRACKET: 1, TokenType.L_BRACE: 1}
_CLOSING = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})
_EARTH_RADIUS_M = 6_371_008.8


class BadQuery(Invalid):
    """A query parameter is wrong; the message and ``detail["parameter"]`` name it."""

    status_code = 400
    type = "bad_query"


def _bad(parameter: str, message: str, **detail: Any) -> BadQuery:
    return BadQuery(f"{parameter}: {message}", detail={"parameter": parameter, **detail})


def check_text(name: str, value: str | bytes) -> str:
    """`value` as text; BadQuery naming `name` if it is not valid UTF-8, holds NUL or is too long.

    Accepts ``bytes`` or text decoded with ``surrogateescape`` (whose lone surrogates mark bytes
    that were not UTF-8).
    """
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(name, f"is not valid UTF-8 (byte {exc.start})", reason="encoding") from None
    elif isinstance(value, str):
        text = value
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _bad(name, f"is not valid UTF-8 (character {exc.start})", reason="encoding") from None
    else:
        raise _bad(name, "must be text", reason="type")
    if "\x00" in text:
        raise _bad(name, f"contains a NUL character at position {text.index(chr(0))}", reason="nul")
    size = len(text.encode("utf-8"))
    if size > MAX_PARAM_BYTES:
        raise _bad(
            name,
            f"is {size:,} bytes long; the limit is {MAX_PARAM_BYTES:,}",
            reason="limit",
            limit="max_param_bytes",
            max=MAX_PARAM_BYTES,
        )
    return text


@dataclass(frozen=True)
class Page:
    """One page of results: its rows, and where the next page starts (None when this is the last)."""

    rows: pa.Table
    #: The ``$next`` token for the next page (keyset queries).
    next: str | None
    #: The ``$offset`` of the next page (grouped queries, or when ``$offset`` was used).
    next_offset: int | None


@dataclass(frozen=True)
class RowRange:
    """A page that is a range of positions in the release's own order: no filter, no expression,
    ordered as the release is stored (or not at all). ``ReleaseStore.read_rows`` reads it without
    a query, and gives what ``sql`` would."""

    first: int
    count: int
    #: (name in the result, column of the release or ``_row``): the shown columns, then the hidden keys.
    columns: list[tuple[str, str]]


@dataclass(frozen=True)
class CompiledQuery:
    """The DuckDB SQL of one page of a SoQL query over the view named `table`, and how to page it.

    Run ``sql`` with ``params``, asking for ``limit + 1`` rows, then pass the result to ``page``.
    """

    sql: str
    params: list[Any]
    #: Output column name → type ("string", "number", "boolean", "date", "datetime", "point", "null").
    columns: dict[str, str]
    limit: int
    offset: int
    #: True when pages are keyed (``$next``); False when only ``$offset`` pages (grouped queries).
    keyset: bool
    table: str
    _hidden: list[str] = field(repr=False)
    _fingerprint: str = field(repr=False)
    _count: tuple[str, list[Any]] = field(repr=False)
    _estimate: tuple[str, list[Any]] | None = field(repr=False)
    #: The page as a range of positions, when it is one (see ``RowRange``); else None.
    row_range: RowRange | None = None

    @property
    def fetch_rows(self) -> int:
        """How many rows to fetch for one page: one more than the limit, to learn if there is more."""
        return self.limit + 1

    def count_sql(self) -> tuple[str, list[Any]]:
        """SQL and parameters for the exact total of the filtered query (ignoring limit and paging)."""
        return self._count

    def estimate_sql(self, rows: int | None = None) -> tuple[str, list[Any]] | None:
        """SQL and parameters for an estimated total from a fixed-seed sample; None if not estimable.

        `rows` is the table's size. The estimate counts the matching rows in a system sample (whole
        row vectors, fixed seed) of about ``ESTIMATE_SAMPLE_ROWS`` rows, at least
        ``ESTIMATE_SAMPLE_PERCENT`` %, and scales by the table's size; a table of up to
        ``ESTIMATE_SAMPLE_ROWS`` rows (or of unknown size) is counted whole, so exactly. A reservoir
        sample would read every row; a system sample skips the vectors it does not take.
        Grouped queries return None: a sample cannot estimate a number of groups.
        """
        if self._estimate is None:
            return None
        sql, params = self._estimate
        sample = ""
        if rows is not None and rows > ESTIMATE_SAMPLE_ROWS:
            percent = max(ESTIMATE_SAMPLE_PERCENT, min(100.0, 100.0 * ESTIMATE_SAMPLE_ROWS / rows))
            sample = f" USING SAMPLE {percent:.4f}% (system, 7)"
        return sql.replace("{sample}", sample), params

    def next_token(self, last_row: Mapping[str, Any]) -> str:
        """The ``$next`` token after a row of this query's result (the hidden key columns included)."""
        if not self.keyset:
            raise ValueError("a grouped query pages by $offset, not by token")
        return paging.encode(self._fingerprint, [last_row[name] for name in self._hidden])

    def page(self, result: pa.Table) -> Page:
        """The page in `result` (up to ``fetch_rows`` rows of ``sql``), hidden key columns removed."""
        more = result.num_rows > self.limit
        rows = result.slice(0, self.limit)
        token: str | None = None
        if more and self.keyset and self.limit > 0:
            last = {name: rows.column(name)[self.limit - 1].as_py() for name in self._hidden}
            token = self.next_token(last)
        next_offset = self.offset + self.limit if more and (not self.keyset or self.offset) else None
        return Page(rows=rows.drop_columns(self._hidden), next=token, next_offset=next_offset)


def compile_query(
    params: Mapping[str, str],
    columns: Mapping[str, str],
    *,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
    after: str | None = None,
    table: str = "data",
    sort_key: Sequence[str] = (),
    timezone: str = "UTC",
) -> CompiledQuery:
    """Compile SoQL `params` over a release whose `columns` map name → type; BadQuery if refused.

    `after` is a ``$next`` token (or pass it as ``params["$next"]``). The SQL reads the view `table`.
    `sort_key` is the release's ``order_by`` (``BuildInfo.order_by``): when ``$order`` asks for a
    prefix of it, ascending (or for nothing), the file is already in that order, so the SQL has no
    ORDER BY and pages by ``_row`` alone, and DuckDB stops reading as soon as the page is full.
    """
    for name, kind in columns.items():
        if kind not in COLUMN_TYPES:
            raise ValueError(f"column {name} has unknown type {kind!r}")
    texts: dict[str, str] = {}
    for raw_name, raw_value in params.items():
        name = check_text("parameter name", raw_name)
        texts[name] = check_text(name, raw_value)
    if after is not None:
        texts[NEXT] = check_text(NEXT, after)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    return _Builder(texts, dict(columns), table, default_limit, max_limit, list(sort_key), zone).build()


@dataclass(frozen=True)
class _Expr:
    sql: str
    type: str
    agg: bool = False
    #: SQL of the bare column references outside aggregates.
    free: frozenset[str] = frozenset()
    #: The values of its ``?`` placeholders, in order.
    params: tuple[Any, ...] = ()
    #: True when this is a bare text literal (so it can still be typed by what it is compared with).
    literal: bool = False
    shown: str = ""


@dataclass(frozen=True)
class _Shape:
    """A compiled query apart from where its page starts and how long it is (immutable, shared)."""

    where: tuple[_Expr, ...]
    aggregated: bool
    #: The order keys, then ``_row`` (or the group keys, for a grouped query).
    order_keys: tuple[tuple[_Expr, bool], ...]
    hidden: tuple[str, ...]
    fingerprint: str
    in_file_order: bool
    by_position: tuple[tuple[str, str], ...] | None
    columns: tuple[tuple[str, str], ...]
    items: tuple[str, ...]
    item_params: tuple[Any, ...]
    where_sql: str
    where_params: tuple[Any, ...]
    group_sql: str
    group_params: tuple[Any, ...]
    having_sql: str
    having_params: tuple[Any, ...]
    keys: tuple[str, ...]
    key_params: tuple[Any, ...]
    count: tuple[str, tuple[Any, ...]]
    estimate: tuple[str, tuple[Any, ...]] | None


class _Builder:
    def __init__(
        self,
        texts: dict[str, str],
        columns: dict[str, str],
        table: str,
        default_limit: int,
        max_limit: int,
        sort_key: list[str],
        zone: ZoneInfo,
    ) -> None:
        self.zone = zone
        self.sort_key = sort_key
        self.texts = texts
        self.columns = columns
        self.table = table
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.aliases: dict[str, _Expr] = {}

    # --- the query ---------------------------------------------------------------------------------

    def build(self) -> CompiledQuery:
        for name in self.texts:
            if name.startswith("$") and name not in PARAMETERS and name != NEXT:
                raise _bad(
                    name,
                    f"is not a SoQL parameter; use {', '.join(PARAMETERS)}, {NEXT} or column=value",
                    reason="unknown_parameter",
                )
        limit = self._number("$limit", self.default_limit, self.max_limit)
        offset = self._number("$offset", 0, MAX_OFFSET)
        shape = self._shape()
        token = self.texts.get(NEXT)
        keyset = _Expr("TRUE", "boolean")
        values: list[Any] = []
        if shape.aggregated and token is not None:
            raise _bad(NEXT, "grouped queries page by $offset only", reason="next")
        if token is not None:
            if "$offset" in self.texts:
                raise _bad(NEXT, "use either $next or $offset, not both", reason="next")
            try:
                values = paging.decode(token, shape.fingerprint, len(shape.order_keys))
            except paging.TokenError as exc:
                raise _bad(NEXT, str(exc), reason="token") from None
            if not isinstance(values[-1], int):
                raise _bad(NEXT, "the token is garbled: the row number is missing", reason="token")
            keyset = self._after(list(shape.order_keys), values)
        keys = shape.keys
        offset_sql_zero = False
        row_range: RowRange | None = None
        if shape.in_file_order:
            # The file is in this order already, and DuckDB keeps it (preserve_insertion_order).
            keys = ()
            if token is not None:
                keyset = _Expr(f"({_quote(ROW_COLUMN)} > ?)", "boolean", params=(values[-1],))
            if not shape.where:
                # Unfiltered: the page is a range of _row, which the zonemaps find directly.
                first = (values[-1] + 1 if token is not None else 0) + offset
                keyset = _Expr(
                    f"({_quote(ROW_COLUMN)} >= ? AND {_quote(ROW_COLUMN)} < ?)",
                    "boolean",
                    params=(first, first + limit + 1),
                )
                offset_sql_zero = True
                if shape.by_position is not None and 0 <= first <= MAX_ROW_POSITION:
                    row_range = RowRange(first=first, count=limit + 1, columns=list(shape.by_position))
        sql = (
            f"SELECT {', '.join(shape.items)} FROM {_quote(self.table)} WHERE {shape.where_sql} AND {keyset.sql}"  # noqa: S608 (compiled from the allow-listed tree)
            f"{shape.group_sql}{shape.having_sql}"
            + (f" ORDER BY {', '.join(keys)}" if keys else "")
            + f" LIMIT {limit + 1} OFFSET {0 if offset_sql_zero else offset}"
        )
        params = [
            *shape.item_params,
            *shape.where_params,
            *keyset.params,
            *shape.group_params,
            *shape.having_params,
            *(shape.key_params if keys else ()),
        ]
        return CompiledQuery(
            sql=sql,
            params=params,
            columns=dict(shape.columns),
            limit=limit,
            offset=offset,
            keyset=not shape.aggregated,
            table=self.table,
            _hidden=list(shape.hidden),
            _fingerprint=shape.fingerprint,
            _count=(shape.count[0], list(shape.count[1])),
            _estimate=None if shape.estimate is None else (shape.estimate[0], list(shape.estimate[1])),
            row_range=row_range,
        )

    def _shape(self) -> _Shape:
        """The query apart from its paging, from the cache when the same query was compiled before."""
        texts = tuple((k, v) for k, v in self.texts.items() if k not in _PAGING)
        key = (texts, tuple(self.columns.items()), self.table, tuple(self.sort_key), str(self.zone))
        cached = sum(len(k) + len(v) for k, v in texts) <= _CACHED_TEXT_CHARS
        if cached:
            with _shapes_lock:
                found = _SHAPES.get(key)
                if found is not None:
                    _SHAPES.move_to_end(key)
                    return found
        shape = self._new_shape()
        if cached:
            with _shapes_lock:
                _SHAPES[key] = shape
                while len(_SHAPES) > _CACHED_SHAPES:
                    _SHAPES.popitem(last=False)
        return shape

    def _new_shape(self) -> _Shape:
        select = self._select()
        where = self._conditions()
        group = self._group()
        having = self._condition("$having") if "$having" in self.texts else None
        if having is not None and not group and not having.agg:
            raise _bad("$having", "filters groups: use it with $group or an aggregate", reason="having")
        aggregated = bool(group) or any(e.agg for _, e in select) or (having is not None and having.agg)
        order = self._order()
        if aggregated:
            self._check_grouping(select, group, order, having)
        elif any(e.agg for e, _ in order):
            raise _bad("$order", "aggregates can be ordered by only in a grouped query", reason="aggregate")
        where_sql = " AND ".join(f"({w.sql})" for w in where) or "TRUE"
        where_params = [v for w in where for v in w.params]
        items = [f"{e.sql} AS {_quote(n)}" for n, e in select]
        item_params = [v for _, e in select for v in e.params]
        out_columns = {n: e.type for n, e in select}
        group_sql = f" GROUP BY {', '.join(g.sql for g in group)}" if group else ""
        group_params = [v for g in group for v in g.params]
        having_sql = f" HAVING {having.sql}" if having is not None else ""
        having_params = list(having.params) if having is not None else []
        order_keys = list(order)
        fingerprint = paging.fingerprint(
            self.table,
            items,
            item_params,
            where_sql,
            where_params,
            group_sql,
            group_params,
            having_sql,
            having_params,
            [(e.sql, e.params, desc) for e, desc in order],
        )
        hidden: list[str] = []
        if aggregated:
            order_keys += [(g, False) for g in group]
        else:
            order_keys.append((_Expr(_quote(ROW_COLUMN), "number"), False))
            used = set(out_columns)
            hidden = [_hidden_name(i, used) for i in range(len(order_keys))]
            items += [f"{e.sql} AS {_quote(h)}" for (e, _), h in zip(order_keys, hidden, strict=True)]
            item_params += [v for e, _ in order_keys for v in e.params]
        keys = [f"{e.sql} {'DESC NULLS LAST' if desc else 'ASC NULLS FIRST'}" for e, desc in order_keys]
        in_file_order = not aggregated and self._in_file_order(order)
        if aggregated:
            count = (
                f"SELECT count(*) FROM (SELECT 1 FROM {_quote(self.table)} WHERE {where_sql}"  # noqa: S608 (compiled from the allow-listed tree)
                f"{group_sql}{having_sql}) AS q",
                [*where_params, *group_params, *having_params],
            )
            estimate = None
        else:
            count = (f"SELECT count(*) FROM {_quote(self.table)} WHERE {where_sql}", where_params)  # noqa: S608 (compiled from the allow-listed tree)
            estimate = (
                f"SELECT CAST(round(count(*) FILTER (WHERE {where_sql}) * (SELECT count(*) FROM "  # noqa: S608 (compiled from the allow-listed tree)
                f"{_quote(self.table)}) / greatest(count(*), 1)) AS BIGINT) FROM (SELECT * FROM "
                f"{_quote(self.table)}{{sample}}) AS s",
                where_params,
            )
        by_position = self._by_position(select, order_keys, hidden) if in_file_order and not where else None
        return _Shape(
            where=tuple(where),
            aggregated=aggregated,
            order_keys=tuple(order_keys),
            hidden=tuple(hidden),
            fingerprint=fingerprint,
            in_file_order=in_file_order,
            by_position=by_position,
            columns=tuple(out_columns.items()),
            items=tuple(items),
            item_params=tuple(item_params),
            where_sql=where_sql,
            where_params=tuple(where_params),
            group_sql=group_sql,
            group_params=tuple(group_params),
            having_sql=having_sql,
            having_params=tuple(having_params),
            keys=tuple(keys),
            key_params=tuple(v for e, _ in order_keys for v in e.params),
            count=(count[0], tuple(count[1])),
            estimate=None if estimate is None else (estimate[0], tuple(estimate[1])),
        )

    def _by_position(
        self, select: list[tuple[str, _Expr]], order_keys: list[tuple[_Expr, bool]], hidden: list[str]
    ) -> tuple[tuple[str, str], ...] | None:
        """The result's columns as (name, column of the release or ``_row``), when every one is a
        bare column (nothing to compute), so that a page can be read by position; else None."""
        columns = {_quote(name): name for name in self.columns}
        columns[_quote(ROW_COLUMN)] = ROW_COLUMN
        items = [*select, *((h, e) for (e, _), h in zip(order_keys, hidden, strict=True))]
        if any(e.sql not in columns or e.params or e.agg for _, e in items):
            return None
        return tuple((name, columns[e.sql]) for name, e in items)

    def _number(self, name: str, default: int, maximum: int) -> int:
        text = self.texts.get(name)
        if text is None:
            return default
        text = text.strip()
        if not text.isascii() or not text.isdigit():
            shown = text[:40]
            raise _bad(name, f"{shown!r} is not a whole number from 0 to {maximum:,}", reason="number")
        if len(text) > 12 or int(text) > maximum:
            raise _bad(
                name,
                f"{text[:40]} is more than the maximum of {maximum:,}",
                reason="limit",
                max=maximum,
            )
        return int(text)

    def _select(self) -> list[tuple[str, _Expr]]:
        text = self.texts.get("$select", "*").strip() or "*"
        select = self._parse_clause("$select", text, "SELECT ", "expressions")
        if len(select.expressions) > MAX_SELECT_ITEMS:
            raise _bad("$select", f"has more than {MAX_SELECT_ITEMS} items", reason="limit")
        out: list[tuple[str, _Expr]] = []
        names: set[str] = set()
        compile_ = self._compiler("$select")
        for item in select.expressions:
            if isinstance(item, exp.Star):
                for column, kind in self.columns.items():
                    out.append(
                        (column, _Expr(_quote(column), _TYPES[kind], free=frozenset({_quote(column)})))
                    )
                continue
            alias: str | None = None
            if isinstance(item, exp.Alias):
                alias = item.alias
                if not _NAME.fullmatch(alias):
                    raise _bad("$select", f"alias {alias!r} must be letters, digits and _", reason="alias")
                item = item.this
            compiled = compile_(item, 0)
            name = alias or _auto_name(item)
            if name in names:
                raise _bad(
                    "$select", f"two columns are named {name}: give one an alias with AS", reason="alias"
                )
            out.append((name, compiled))
            if alias:
                self.aliases[alias] = compiled
        for name, _ in out:
            names.add(name)
        return out

    def _conditions(self) -> list[_Expr]:
        out: list[_Expr] = []
        for name, value in self.texts.items():
            if name.startswith("$"):
                continue
            kind = self.columns.get(name)
            if kind is None:
                raise _bad(
                    name, f"is not a column of this dataset{_columns_hint(self.columns)}", reason="column"
                )
            if kind == "point":
                raise _bad(
                    name, "a point column cannot be filtered by value; use within_circle", reason="type"
                )
            typed = self._coerce(name, _Expr("?", "text", params=(value,), literal=True), _TYPES[kind])
            out.append(_Expr(f"{_quote(name)} = {typed.sql}", "boolean", params=typed.params))
        if "$where" in self.texts:
            where = self._condition("$where")
            if where.agg:
                raise _bad("$where", "aggregate functions belong in $select or $having", reason="aggregate")
            out.append(where)
        words = self.texts.get("$q", "").split()
        if words:
            if len(words) > MAX_Q_WORDS:
                raise _bad("$q", f"has {len(words)} words; the limit is {MAX_Q_WORDS}", reason="limit")
            text_columns = [c for c, k in self.columns.items() if k == "string"]
            if not text_columns:
                raise _bad("$q", "this dataset has no text columns to search", reason="q")
            for word in words:
                tests = " OR ".join(f"contains(lower({_quote(c)}), ?)" for c in text_columns)
                out.append(_Expr(tests, "boolean", params=(word.lower(),) * len(text_columns)))
        return out

    def _condition(self, name: str) -> _Expr:
        text = self.texts[name]
        self._pre_check(name, text)
        try:
            node = sqlglot.parse_one(text, read=_DIALECT, into=exp.Condition)
        except RecursionError:
            raise _nesting(name) from None
        except Exception as exc:  # sqlglot's ParseError or TokenError, or anything odd
            raise _syntax(name, exc) from None
        compiled = self._compiler(name)(node, 0)
        if compiled.type not in ("boolean", "null"):
            raise _bad(name, f"{compiled.shown} is not a condition (it is {compiled.type})", reason="type")
        return compiled

    def _group(self) -> list[_Expr]:
        if "$group" not in self.texts:
            return []
        select = self._parse_clause("$group", self.texts["$group"], "SELECT 1 GROUP BY ", "group")
        group = select.args["group"]
        compile_ = self._compiler("$group")
        out = []
        for item in group.expressions:
            compiled = compile_(item, 0)
            if compiled.agg:
                raise _bad("$group", f"cannot group by an aggregate ({compiled.shown})", reason="aggregate")
            out.append(compiled)
        return out

    def _order(self) -> list[tuple[_Expr, bool]]:
        if "$order" not in self.texts:
            return []
        select = self._parse_clause("$order", self.texts["$order"], "SELECT 1 ORDER BY ", "order")
        items = select.args["order"].expressions
        if len(items) > MAX_ORDER_KEYS:
            raise _bad("$order", f"has {len(items)} keys; the limit is {MAX_ORDER_KEYS}", reason="limit")
        compile_ = self._compiler("$order")
        out = []
        for item in items:
            if not isinstance(item, exp.Ordered) or item.args.get("with_fill"):
                raise _bad("$order", "write column [ASC|DESC], separated by commas", reason="syntax")
            compiled = compile_(item.this, 0)
            if compiled.type == "point":
                raise _bad("$order", f"cannot order by the point {compiled.shown}", reason="type")
            out.append((compiled, bool(item.args.get("desc"))))
        return out

    def _check_grouping(
        self,
        select: list[tuple[str, _Expr]],
        group: list[_Expr],
        order: list[tuple[_Expr, bool]],
        having: _Expr | None,
    ) -> None:
        grouped = {g.sql for g in group}
        checks = [("$select", e) for _, e in select] + [("$order", e) for e, _ in order]
        if having is not None:
            checks.append(("$having", having))
        for name, e in checks:
            if e.sql in grouped:
                continue
            loose = sorted(e.free - grouped)
            if loose:
                raise _bad(
                    name,
                    f"{e.shown} uses {loose[0]}, which is neither grouped by ($group) nor inside an aggregate",
                    reason="grouping",
                )

    def _in_file_order(self, order: list[tuple[_Expr, bool]]) -> bool:
        """Whether `order` (then ``_row``) is the order the release file is stored in."""
        if len(order) > len(self.sort_key):
            return False
        return all(
            not desc and e.sql == _quote(k) for (e, desc), k in zip(order, self.sort_key, strict=False)
        )

    def _after(self, order: list[tuple[_Expr, bool]], values: list[Any]) -> _Expr:
        """The condition for rows strictly after `values` in `order` (nulls sort lowest).

        Order keys are expressions over columns, without parameters of their own in the places
        used here, so each fragment's parameters are exactly the token values it names.
        """
        last = order[-1][0]
        sql, params = f"{last.sql} > ?", [*last.params, values[-1]]
        for (e, desc), value in reversed(list(zip(order[:-1], values[:-1], strict=True))):
            k, kp = e.sql, list(e.params)
            if value is None:
                beyond, bp = ("FALSE", []) if desc else (f"{k} IS NOT NULL", kp)
                same, sp = f"{k} IS NULL", kp
            else:
                beyond, bp = (
                    (f"({k} < ? OR {k} IS NULL)", [*kp, value, *kp]) if desc else (f"{k} > ?", [*kp, value])
                )
                same, sp = f"{k} = ?", [*kp, value]
            sql, params = f"({beyond} OR ({same} AND {sql}))", [*bp, *sp, *params]
        # A redundant bound on the first key that DuckDB can push into the scan (zonemaps).
        first, desc = order[0]
        if len(order) > 1 and values[0] is not None:
            k, kp = first.sql, list(first.params)
            if desc:
                sql, params = f"({k} <= ? OR {k} IS NULL) AND {sql}", [*kp, values[0], *kp, *params]
            else:
                sql, params = f"{k} >= ? AND {sql}", [*kp, values[0], *params]
        return _Expr(f"({sql})", "boolean", params=tuple(params))

    # --- parsing -----------------------------------------------------------------------------------

    def _pre_check(self, name: str, text: str) -> None:
        """Refuse text that would parse slowly or recurse deeply, before sqlglot parses it."""
        try:
            tokens = Dialect.get_or_raise(_DIALECT).tokenize(text)
        except Exception as exc:  # sqlglot's TokenError (an unclosed quote), or anything odd
            raise _syntax(name, exc) from None
        if len(tokens) > MAX_TOKENS:
            raise _bad(name, f"has {len(tokens):,} tokens; the limit is {MAX_TOKENS:,}", reason="limit")
        depth = run = 0
        for token in tokens:
            if token.token_type in _CLOSING:
                depth -= 1
            depth += _BRACKETS.get(token.token_type, 0)
            run = run + 1 if token.token_type in _PREFIX else 0
            if depth + run > MAX_NESTING:
                raise _nesting(name)

    def _parse_clause(self, name: str, text: str, prefix: str, part: str) -> exp.Select:
        """Parse `text` as the `part` of a SELECT; refuse anything that is more than that part."""
        self._pre_check(name, text)
        try:
            statements = sqlglot.parse(prefix + text, read=_DIALECT)
        except RecursionError:
            raise _nesting(name) from None
        except Exception as exc:  # sqlglot's ParseError or TokenError, or anything odd
            raise _syntax(name, exc) from None
        found = [s for s in statements if s is not None]
        if len(found) != 1 or not isinstance(found[0], exp.Select):
            raise _bad(
                name, "must be one list of expressions: no ';', UNION or other statements", reason="syntax"
            )
        select = found[0]
        extra = sorted(
            k for k, v in select.args.items() if v not in (None, False, []) and k not in ("expressions", part)
        )
        if extra:
            raise _bad(
                name, f"must hold only a {name} list; found a {extra[0].upper()} clause", reason="syntax"
            )
        return select

    def _compiler(self, name: str) -> Callable[[exp.Expr, int], _Expr]:
        def run(node: exp.Expr, depth: int) -> _Expr:
            try:
                return self._compile(name, node, depth)
            except RecursionError:
                raise _nesting(name) from None

        return run

    # --- expressions -------------------------------------------------------------------------------

    def _compile(self, name: str, node: exp.Expr, depth: int, *, in_agg: bool = False) -> _Expr:
        if depth > MAX_DEPTH:
            raise _nesting(name)
        shown = _show(node)

        def sub(child: Any, *, agg: bool = in_agg) -> _Expr:
            if not isinstance(child, exp.Expr):
                raise _bad(name, f"{shown} is incomplete", reason="syntax")
            return self._compile(name, child, depth + 1, in_agg=agg)

        if isinstance(node, exp.Paren):
            inner = sub(node.this)
            return _Expr(
                f"({inner.sql})", inner.type, inner.agg, inner.free, inner.params, inner.literal, shown
            )
        if isinstance(node, exp.Column):
            return self._column(name, node, shown)
        if isinstance(node, exp.Literal):
            return self._literal(name, node, shown)
        if isinstance(node, exp.Boolean):
            return _Expr("TRUE" if node.this else "FALSE", "boolean", shown=shown)
        if isinstance(node, exp.Null):
            return _Expr("NULL", "null", shown=shown)
        if isinstance(node, exp.And | exp.Or):
            parts = [self._need(name, sub(p), ("boolean",)) for p in _flatten(node, type(node))]
            word = " AND " if isinstance(node, exp.And) else " OR "
            return _combine(word.join(p.sql for p in parts), "boolean", parts, shown, wrap=True)
        if isinstance(node, exp.Not):
            if isinstance(node.this, exp.Is) and isinstance(node.this.expression, exp.Null):
                inner = sub(node.this.this)
                return _combine(f"{inner.sql} IS NOT NULL", "boolean", [inner], shown, wrap=True)
            inner = self._need(name, sub(node.this), ("boolean",))
            return _combine(f"NOT {inner.sql}", "boolean", [inner], shown, wrap=True)
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise _bad(name, f"{shown}: IS works only with NULL (IS NULL, IS NOT NULL)", reason="syntax")
            inner = sub(node.this)
            return _combine(f"{inner.sql} IS NULL", "boolean", [inner], shown, wrap=True)
        if type(node) in _COMPARISONS:
            left, right = self._comparable(name, sub(node.this), sub(node.expression), shown)
            return _combine(
                f"{left.sql} {_COMPARISONS[type(node)]} {right.sql}",
                "boolean",
                [left, right],
                shown,
                wrap=True,
            )
        if isinstance(node, exp.Between):
            value, low = self._comparable(name, sub(node.this), sub(node.args.get("low")), shown)
            value, high = self._comparable(name, value, sub(node.args.get("high")), shown)
            return _combine(
                f"{value.sql} BETWEEN {low.sql} AND {high.sql}",
                "boolean",
                [value, low, high],
                shown,
                wrap=True,
            )
        if isinstance(node, exp.In):
            if any(node.args.get(k) for k in ("query", "unnest", "field")):
                raise _bad(name, f"{shown}: IN takes a list of values, not a subquery", reason="subquery")
            items = node.expressions
            if len(items) > MAX_IN_ITEMS:
                raise _bad(
                    name,
                    f"an IN list has {len(items):,} items; the limit is {MAX_IN_ITEMS:,}",
                    reason="limit",
                    limit="max_in_items",
                    max=MAX_IN_ITEMS,
                )
            if not items:
                raise _bad(name, f"{shown}: IN needs at least one value", reason="syntax")
            value = sub(node.this)
            compiled = []
            for item in items:
                value, typed = self._comparable(name, value, sub(item), shown)
                compiled.append(typed)
            return _combine(
                f"{value.sql} IN ({', '.join(i.sql for i in compiled)})",
                "boolean",
                [value, *compiled],
                shown,
                wrap=True,
            )
        if isinstance(node, exp.Like | exp.ILike):
            if not isinstance(node.expression, exp.Expr) or isinstance(node.expression, exp.Escape):
                raise _bad(name, f"{shown}: LIKE takes a pattern; ESCAPE is not supported", reason="syntax")
            value = self._need(name, sub(node.this), ("text",))
            pattern = self._need(name, sub(node.expression), ("text",))
            word = "LIKE" if isinstance(node, exp.Like) else "ILIKE"
            word = f"NOT {word}" if node.args.get("negate") else word
            return _combine(
                f"{value.sql} {word} {pattern.sql}", "boolean", [value, pattern], shown, wrap=True
            )
        if type(node) in _ARITHMETIC:
            left = self._need(name, sub(node.this), ("number",))
            right = self._need(name, sub(node.expression), ("number",))
            return _combine(
                f"{left.sql} {_ARITHMETIC[type(node)]} {right.sql}", "number", [left, right], shown, wrap=True
            )
        if isinstance(node, exp.Neg):
            inner = self._need(name, sub(node.this), ("number",))
            return _combine(f"-{inner.sql}", "number", [inner], shown, wrap=True)
        if type(node) in _AGGREGATES:
            return self._aggregate(name, node, shown, sub, in_agg)
        if isinstance(node, exp.Func):
            return self._function(name, node, shown, sub)
        if isinstance(node, exp.Subquery | exp.Query | exp.Exists):
            raise _bad(name, "subqueries are not allowed", reason="subquery")
        if isinstance(node, exp.Star):
            raise _bad(name, "* is allowed only as a whole $select item or in count(*)", reason="syntax")
        raise _bad(
            name, f"{shown}: {node.key.upper()} is not supported in SoQL", reason="syntax", syntax=node.key
        )

    def _column(self, name: str, node: exp.Column, shown: str) -> _Expr:
        if node.table or not isinstance(node.this, exp.Identifier):
            raise _bad(name, f"{shown}: refer to a column by its name alone", reason="column")
        column = node.this.name
        kind = self.columns.get(column)
        if name in ("$order", "$having") and column in self.aliases:
            kind = None  # as in SQL, an alias of $select wins over a column of the same name here
        if kind is not None:
            quoted = _quote(column)
            return _Expr(quoted, _TYPES[kind], free=frozenset({quoted}), shown=column)
        if name != "$select" and column in self.aliases:
            found = self.aliases[column]
            return _Expr(found.sql, found.type, found.agg, found.free, found.params, False, column)
        raise _bad(
            name,
            f"unknown column {column}{_columns_hint(self.columns)}",
            reason="column",
            column=column,
        )

    def _literal(self, name: str, node: exp.Literal, shown: str) -> _Expr:
        text = str(node.this)
        if node.is_string:
            return _Expr("?", "text", params=(text,), literal=True, shown=shown)
        return _Expr(_number_sql(name, text), "number", shown=shown)

    def _aggregate(
        self, name: str, node: exp.Expr, shown: str, sub: Callable[..., _Expr], in_agg: bool
    ) -> _Expr:
        function = _AGGREGATES[type(node)]
        if in_agg:
            raise _bad(name, f"{shown}: aggregates cannot be nested", reason="aggregate")
        if node.expressions or (isinstance(node, exp.Count) and node.args.get("expressions")):
            raise _bad(name, f"{shown}: {function}() takes one argument", reason="arguments")
        arg = node.this
        if isinstance(node, exp.Count) and (arg is None or isinstance(arg, exp.Star)):
            return _Expr("count(*)", "number", agg=True, shown=shown)
        distinct = ""
        if isinstance(arg, exp.Distinct):
            if not isinstance(node, exp.Count) or len(arg.expressions) != 1:
                raise _bad(name, f"{shown}: DISTINCT works only as count(DISTINCT column)", reason="syntax")
            distinct, arg = "DISTINCT ", arg.expressions[0]
        inner = sub(arg, agg=True)
        if function in ("sum", "avg"):
            inner = self._need(name, inner, ("number",))
        elif inner.type == "point" and function != "count":
            raise _bad(name, f"{shown}: {function}() does not work on points", reason="type")
        kind = "number" if function in ("count", "sum", "avg") else inner.type
        return _Expr(f"{function}({distinct}{inner.sql})", kind, agg=True, params=inner.params, shown=shown)

    def _function(self, name: str, node: exp.Func, shown: str, sub: Callable[..., _Expr]) -> _Expr:
        if isinstance(node, exp.Anonymous):
            function = str(node.this).lower()
            args = list(node.expressions)
        else:
            function = node.sql_name().lower()
            args = [a for a in node.args.values() if isinstance(a, exp.Expr)]
        if isinstance(node, exp.Lower | exp.Upper):
            inner = self._need(name, sub(node.this), ("text",))
            return _combine(f"{function}({inner.sql})", "text", [inner], shown)
        if isinstance(node, exp.StartsWith):
            value = self._need(name, sub(node.this), ("text",))
            prefix = self._need(name, sub(node.expression), ("text",))
            return _combine(f"starts_with({value.sql}, {prefix.sql})", "boolean", [value, prefix], shown)
        if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
            unit = node.args.get("unit")
            unit_name = str(unit.name if isinstance(unit, exp.Expr) else unit or "").lower()
            if unit_name not in _TRUNC_UNITS:
                raise _bad(
                    name,
                    f"{shown}: date_trunc's unit must be one of {', '.join(sorted(_TRUNC_UNITS))}",
                    reason="arguments",
                )
            return self._trunc(name, unit_name, sub(node.this), shown)
        if function in _SOQL_TRUNC and isinstance(node, exp.Anonymous):
            if len(args) != 1:
                raise _bad(name, f"{shown}: {function}() takes one argument", reason="arguments")
            return self._trunc(name, _SOQL_TRUNC[function], sub(args[0]), shown)
        if function == "within_circle" and isinstance(node, exp.Anonymous):
            return self._within_circle(name, args, shown, sub)
        raise _bad(
            name,
            f"function {function}() is not allowed; the functions are {_FUNCTIONS_SHOWN}",
            reason="function",
            function=function,
        )

    def _trunc(self, name: str, unit: str, inner: _Expr, shown: str) -> _Expr:
        inner = self._need(name, inner, ("date", "datetime"))
        return _combine(f"date_trunc('{unit}', {inner.sql})", inner.type, [inner], shown)

    def _within_circle(self, name: str, args: list[exp.Expr], shown: str, sub: Callable[..., _Expr]) -> _Expr:
        if len(args) != 4:
            raise _bad(
                name,
                f"{shown}: within_circle(point, latitude, longitude, radius_m) takes 4 arguments",
                reason="arguments",
            )
        point = self._need(name, sub(args[0]), ("point",))
        # Numbers are written into the SQL, never parameters, so repeating them below is safe.
        lat, lon, radius = (self._need(name, sub(a), ("number",)) for a in args[1:])
        if point.params or lat.params or lon.params or radius.params:
            raise _bad(
                name, f"{shown}: within_circle takes a point column and three numbers", reason="arguments"
            )
        p = point.sql
        distance = (
            f"2 * {_EARTH_RADIUS_M} * asin(sqrt(pow(sin(radians(({p}.lat - {lat.sql}) / 2)), 2) + "
            f"cos(radians({lat.sql})) * cos(radians({p}.lat)) * pow(sin(radians(({p}.lon - {lon.sql}) / 2)), 2)))"
        )
        return _combine(f"{distance} <= {radius.sql}", "boolean", [point], shown, wrap=True)

    # --- types -------------------------------------------------------------------------------------

    def _need(self, name: str, e: _Expr, kinds: tuple[str, ...]) -> _Expr:
        if e.type in kinds or e.type == "null":
            return e
        if e.literal:
            return self._coerce(name, e, kinds[0])
        raise _bad(name, f"{e.shown} is {_a(e.type)}, not {' or '.join(_a(k) for k in kinds)}", reason="type")

    def _comparable(self, name: str, left: _Expr, right: _Expr, shown: str) -> tuple[_Expr, _Expr]:
        kinds = {left.type, right.type}
        if "point" in kinds:
            raise _bad(name, f"{shown}: points cannot be compared; use within_circle", reason="type")
        if len(kinds) == 1 or "null" in kinds or kinds == {"date", "datetime"}:
            return left, right
        if left.literal and not right.literal:
            return self._coerce(name, left, right.type), right
        if right.literal and not left.literal:
            return left, self._coerce(name, right, left.type)
        raise _bad(name, f"{shown}: cannot compare {_a(left.type)} with {_a(right.type)}", reason="type")

    def _coerce(self, name: str, e: _Expr, kind: str) -> _Expr:
        """The text literal `e` as a value of `kind`: numbers and booleans written out, dates as parameters."""
        text = str(e.params[0])
        value: Any
        if kind == "text":
            return e
        if kind == "number":
            number = _parse_number(text)
            if number is not None:
                return _Expr(
                    repr(number) if isinstance(number, float) else str(number), "number", shown=e.shown
                )
            value = None
        elif kind == "boolean":
            flag = {"true": True, "false": False}.get(text.strip().lower())
            if flag is not None:
                return _Expr("TRUE" if flag else "FALSE", "boolean", shown=e.shown)
            value = None
        elif kind == "date":
            value = _parse_datetime(text)
            if isinstance(value, datetime) and value.tzinfo is None and value.time() == time(0):
                value = value.date()
        elif kind == "datetime":
            value = _parse_datetime(text)
            if isinstance(value, datetime) and value.tzinfo is None:  # naive: the platform's wall time
                value = value.replace(tzinfo=self.zone)
            elif isinstance(value, date) and not isinstance(value, datetime):
                value = datetime.combine(value, time(0), tzinfo=self.zone)
        else:
            value = None
        if value is None:
            raise _bad(name, f"{text[:60]!r} is not {_a(kind)}", reason="type", value=text[:60])
        return _Expr("?", kind, params=(value,), shown=e.shown)


def _combine(sql: str, kind: str, parts: Iterable[_Expr], shown: str, *, wrap: bool = False) -> _Expr:
    parts = list(parts)
    return _Expr(
        f"({sql})" if wrap else sql,
        kind,
        agg=any(p.agg for p in parts),
        free=frozenset().union(*(p.free for p in parts)),
        params=tuple(v for p in parts for v in p.params),
        shown=shown,
    )


def _flatten(node: exp.Expr, kind: type[exp.Expr]) -> list[exp.Expr]:
    """The operands of a chain of AND (or OR), in order, without recursion."""
    out: list[exp.Expr] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is kind:
            stack.append(current.expression)
            stack.append(current.this)
        else:
            out.append(current)
    return out


def _number_sql(name: str, text: str) -> str:
    value = _parse_number(text)
    if value is None:
        raise _bad(name, f"{text[:40]} is not a number DuckDB can use", reason="number")
    return repr(value) if isinstance(value, float) else str(value)


def _parse_number(text: str) -> int | float | None:
    text = text.strip()
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        value = int(number)
        return value if -_INT64 <= value <= _INT64 else None
    result = float(number)
    return result if math.isfinite(result) else None


def _parse_datetime(text: str) -> datetime | date | None:
    text = text.strip()
    if len(text) > 40:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return value


def _show(node: exp.Expr) -> str:
    try:
        text = node.sql(dialect=_DIALECT)
    except Exception:  # only for messages
        text = node.key
    return text if len(text) <= 80 else text[:77] + "..."


def _auto_name(node: exp.Expr) -> str:
    """The output name of an unaliased item, as Socrata forms it: count(*) → count, sum(m1) → sum_m1."""
    text = re.sub(r"\W+", "_", _show(node).lower()).strip("_")
    return text[:64] or "expr"


def _hidden_name(index: int, used: set[str]) -> str:
    name = f"__key{index}"
    while name in used:
        name = "_" + name
    used.add(name)
    return name


def _columns_hint(columns: Mapping[str, str]) -> str:
    names = list(columns)
    shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
    return f"; the columns are: {shown}" if names else ""


def _a(kind: str) -> str:
    words = {
        "text": "text",
        "number": "a number",
        "boolean": "a boolean",
        "date": "a date",
        "datetime": "a datetime",
        "point": "a point",
        "null": "null",
    }
    return words.get(kind, kind)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _nesting(name: str) -> BadQuery:
    return _bad(
        name,
        f"is nested too deeply; the limit is {MAX_NESTING} levels of brackets or NOTs",
        reason="limit",
        limit="max_nesting",
        max=MAX_NESTING,
    )


def _syntax(name: str, exc: BaseException) -> BadQuery:
    errors = getattr(exc, "errors", None)
    first = errors[0] if errors else {}
    description = " ".join(str(first.get("description") or exc).split())
    description = re.sub(r"\x1b\[[0-9;]*m", "", description)[:200]
    where = f" at column {first['col']}" if first.get("col") else ""
    return _bad(name, f"could not be parsed{where}: {description}", reason="syntax")

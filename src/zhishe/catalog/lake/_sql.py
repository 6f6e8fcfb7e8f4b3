"""Safe SQL for DuckDB: sqlglot expressions, bound parameters, known columns, and sessions.

User text never becomes SQL text. Identifiers come only from the known column names (quoted by
sqlglot); every value is a named ``$pN`` parameter bound by DuckDB, cast to the column's type.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pds
from sqlglot import exp

from zhishe.catalog.lake.errors import LakeError, LakeQueryError
from zhishe.catalog.lake.filters import And, Condition, Filter, Not, Or, coerce_value
from zhishe.catalog.types import ROW_ID, ColumnSpec, ColumnType

__all__ = [
    "SQL_TYPES",
    "Known",
    "Params",
    "col",
    "compile_filter",
    "duck",
    "normalize_arrow",
    "run",
    "sql_text",
]

SQL_TYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.DECIMAL: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMPTZ",
}

_ROOT: duckdb.DuckDBPyConnection | None = None
_ROOT_LOCK = threading.Lock()


class Params:
    """The values of one query's ``$pN`` parameters, added as the query is built."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, sql_type: str | None = None) -> exp.Expr:
        """A placeholder for `value`, cast to `sql_type` when given."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        placeholder: exp.Expr = exp.Placeholder(this=name)
        if sql_type is None:
            return placeholder
        return exp.Cast(this=placeholder, to=exp.DataType.build(sql_type, dialect="duckdb"))

    def typed(self, spec: ColumnSpec, value: Any) -> exp.Expr:
        """A placeholder for `value` coerced to `spec`'s type (LakeQueryError when it cannot be)."""
        coerced = coerce_value(spec, value)
        if isinstance(coerced, float) and math.isnan(coerced):
            raise LakeQueryError(
                f"column {spec.name!r}: NaN cannot be compared; it matches no comparison",
                detail={"column": spec.name, "value": repr(value)},
            )
        return self.bind(coerced, SQL_TYPES[ColumnType(spec.type)])


class Known:
    """The columns a query may name; anything else is refused with LakeQueryError."""

    def __init__(self, specs: Sequence[ColumnSpec]) -> None:
        self.specs = list(specs)
        self.by_name = {s.name: s for s in specs}

    def get(self, name: Any, *, role: str = "column") -> ColumnSpec:
        """The spec of column `name`, or LakeQueryError naming it."""
        if isinstance(name, str) and name in self.by_name:
            return self.by_name[name]
        raise LakeQueryError(
            f"unknown {role} {name!r}", detail={"column": str(name), "known": sorted(self.by_name)}
        )

    @property
    def names(self) -> list[str]:
        """The column names in stored order."""
        return [s.name for s in self.specs]


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference (the name must already be a known column)."""
    return exp.column(name, table=table, quoted=True)


def compile_filter(where: Filter, known: Known, params: Params, *, table: str | None = None) -> exp.Expr:
    """The SQL condition of a filter, with every value bound as a typed parameter."""
    if isinstance(where, And):
        return exp.and_(*(compile_filter(f, known, params, table=table) for f in where.filters))
    if isinstance(where, Or):
        return exp.or_(*(compile_filter(f, known, params, table=table) for f in where.filters))
    if isinstance(where, Not):
        inner = compile_filter(where.filter, known, params, table=table)
        # NULL (unknown) counts as "no match", so `not` is the exact complement.
        return exp.Not(this=exp.Paren(this=exp.Coalesce(this=inner, expressions=[exp.false()])))
    return _condition(where, known, params, table=table)


def _condition(cond: Condition, known: Known, params: Params, *, table: str | None) -> exp.Expr:
    spec = known.get(cond.column)
    condition = _comparison(cond, spec, params, table=table)
    if ColumnType(spec.type) == ColumnType.DECIMAL and cond.op not in ("is_null", "not_null"):
        # NaN matches no comparison, like NULL. Said explicitly, because a comparison pushed
        # down into the Arrow scan follows IEEE rules while DuckDB sorts NaN above +inf.
        return exp.and_(condition, exp.Not(this=_isnan(col(spec.name, table))))
    return condition


def _isnan(column: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="isnan", expressions=[column])


def _comparison(cond: Condition, spec: ColumnSpec, params: Params, *, table: str | None) -> exp.Expr:
    column = col(spec.name, table)
    kind = ColumnType(spec.type)
    op = cond.op
    if op == "is_null":
        return exp.Is(this=column, expression=exp.Null())
    if op == "not_null":
        return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
    if kind == ColumnType.POINT:
        raise LakeQueryError(
            f"column {spec.name!r} is a point; it can only be tested with is_null / not_null",
            detail={"column": spec.name, "op": op},
        )
    if op in ("contains", "starts_with"):
        if kind != ColumnType.STRING:
            raise LakeQueryError(
                f"{op} works on text columns only; {spec.name!r} is {kind.value}",
                detail={"column": spec.name, "op": op},
            )
        # contains()/starts_with() match literally: % and _ are ordinary characters.
        value = params.typed(spec, cond.value)
        return exp.Anonymous(this=op, expressions=[column, value])
    if op in ("in", "not_in"):
        membership = exp.In(this=column, expressions=[params.typed(spec, v) for v in cond.value])
        return membership if op == "in" else exp.Not(this=membership)
    if op == "between":
        low, high = cond.value
        return exp.Between(this=column, low=params.typed(spec, low), high=params.typed(spec, high))
    value = params.typed(spec, cond.value)
    builders: dict[str, type[exp.Binary]] = {
        "=": exp.EQ,
        "!=": exp.NEQ,
        "<": exp.LT,
        "<=": exp.LTE,
        ">": exp.GT,
        ">=": exp.GTE,
    }
    return builders[op](this=column, expression=value)


def _root() -> duckdb.DuckDBPyConnection:
    global _ROOT
    if _ROOT is None:
        root = duckdb.connect(":memory:")
        root.execute("SET TimeZone = 'UTC'")
        root.execute("SET default_null_order = 'nulls_last'")
        _ROOT = root
    return _ROOT


@contextmanager
def duck(relations: Mapping[str, Any]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private DuckDB connection with `relations` (Arrow datasets, tables) registered by name.

    Each call gets its own cursor on one shared in-memory database, so threads never share a
    connection; registrations vanish when the block ends. File datasets are registered with
    their string columns declared as ``string_view`` (see ``_for_duckdb``).
    """
    with _ROOT_LOCK:
        con = _root().cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, relation in relations.items():
            con.register(name, _for_duckdb(relation))
        yield con
    finally:
        con.close()


def _for_duckdb(relation: Any) -> Any:
    """A file dataset with its string columns declared as ``string_view``.

    delta-rs's MERGE (upserts) writes files whose stored Arrow type is ``string_view`` while
    plain writes store ``string``. When DuckDB pushes a filter on a string column into the scan,
    pyarrow cannot compare a ``string`` field with a ``string_view`` file ("no kernel matching
    input types"); declared as ``string_view``, files of both kinds filter correctly. DuckDB reads
    either as VARCHAR, so query results are unchanged.
    """
    if not isinstance(relation, pds.FileSystemDataset):
        return relation
    schema = relation.schema
    if not any(pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema):
        return relation
    viewed = pa.schema(
        [
            f.with_type(pa.string_view())
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            else f
            for f in schema
        ],
        metadata=schema.metadata,
    )
    return pds.FileSystemDataset(list(relation.get_fragments()), viewed, relation.format, relation.filesystem)


def sql_text(query: exp.Expr) -> str:
    """The DuckDB SQL of an expression tree."""
    return query.sql(dialect="duckdb")


def run(con: duckdb.DuckDBPyConnection, query: exp.Expr, params: Params) -> pa.Table:
    """Run `query` with its parameters and return the result as an Arrow table."""
    try:
        relation = con.sql(sql_text(query), params=params.values or None)
        if relation is None:
            raise LakeError("the query returned no result", detail={})
        return normalize_arrow(relation.to_arrow_table())
    except duckdb.Error as exc:
        raise duck_error(exc) from exc


def reader(con: duckdb.DuckDBPyConnection, query: exp.Expr, params: Params, *, batch_rows: int) -> Any:
    """Run `query` and return a `pyarrow.RecordBatchReader` over its result."""
    try:
        relation = con.sql(sql_text(query), params=params.values or None)
        if relation is None:
            raise LakeError("the query returned no result", detail={})
        return relation.to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        raise duck_error(exc) from exc


def duck_error(exc: duckdb.Error) -> LakeError:
    """The lake error for a DuckDB failure: bad values are the caller's, the rest are ours."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(
        exc, duckdb.ConversionException | duckdb.OutOfRangeException | duckdb.InvalidInputException
    ):
        return LakeQueryError(f"the query cannot be answered: {text}", detail={})
    return LakeError(f"query failed: {text}", detail={})


def normalize_arrow(table: pa.Table) -> pa.Table:
    """Timestamps with a time zone relabelled as UTC (DuckDB may call it Etc/UTC)."""
    fields = []
    changed = False
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None and f.type.tz != "UTC":
            fields.append(f.with_type(pa.timestamp(f.type.unit, tz="UTC")))
            changed = True
        else:
            fields.append(f)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata)) if changed else table


def row_id_known(specs: Sequence[ColumnSpec]) -> Known:
    """Known columns plus the hidden row id (for internal conditions on it)."""
    return Known([*specs, ColumnSpec(name=ROW_ID, type=ColumnType.INTEGER)])

"""SQL constructs for the OData functions and operators whose SQL differs between SQLite and
PostgreSQL, compiled per dialect with ``sqlalchemy.ext.compiler``.

Every value reaches SQL as a bound parameter or a column; the templates here only arrange them.
Date parts are taken in UTC (a PostgreSQL ``timestamptz`` is read ``AT TIME ZONE 'UTC'``;
SQLite holds UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff' as SQLAlchemy writes it, and parts are cut
from it). Every template names each argument once (SQLite's ``floor``, ``ceiling`` and ``mod`` bind
theirs in a one-row subquery), so nested calls grow the SQL linearly. Arithmetic on PostgreSQL
runs in ``NUMERIC``, so no user input can
overflow an integer or a float there, and a division or modulo by zero gives NULL on both.
JSON members are read with ``#>``/``#>>`` on PostgreSQL and ``json_type``/``json_extract`` on
SQLite, and only a member of the asked-for JSON type yields a value (a JSON string never equals
a number).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import ARRAY, Boolean, ColumnElement, Date, DateTime, Integer, Numeric, String, Time, literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "Add",
    "Ceiling",
    "Clamp",
    "Date_",
    "Day",
    "Div",
    "Floor",
    "FractionalSeconds",
    "Hour",
    "IntDiv",
    "JsonBoolean",
    "JsonNumber",
    "JsonText",
    "Minute",
    "Mod",
    "Month",
    "Mul",
    "Position",
    "Round",
    "Second",
    "Sub",
    "Time_",
    "Year",
    "json_member",
]


def _base_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


class _Sql(FunctionElement[Any]):
    """A function whose SQL text comes from ``sql(dialect, args)``, args already compiled."""

    inherit_cache = True

    def sql(self, dialect: str, args: Sequence[str]) -> str:  # pragma: no cover - every subclass has one
        raise NotImplementedError


@compiles(_Sql)
def _compile(element: _Sql, compiler: SQLCompiler, **kw: Any) -> str:
    # each argument is parenthesised if it is an operation, so templates can use it as a unit
    args = [
        compiler.process(clause.self_group(against=operators.getitem), **kw) for clause in element.clauses
    ]
    return element.sql(compiler.dialect.name, args)


def _sqlite_has_math() -> bool:
    """Whether this SQLite was built with its math functions (floor, ceil, mod)."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("SELECT floor(1.5), ceil(1.5), mod(5, 3)")
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()
    return True


#: SQLite's math functions, when present, replace longer portable expressions.
SQLITE_MATH = _sqlite_has_math()


class Position(_Sql):
    """1-based position of the second string in the first; 0 when absent."""

    inherit_cache = True
    type = Integer()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        name = "strpos" if dialect == "postgresql" else "instr"
        return f"{name}({args[0]}, {args[1]})"


class _Arith(_Sql):
    inherit_cache = True
    symbol: ClassVar[str] = "+"
    type = Numeric()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"(CAST({args[0]} AS NUMERIC) {self.symbol} CAST({args[1]} AS NUMERIC))"
        return f"({args[0]} {self.symbol} {args[1]})"


class Add(_Arith):
    """``a + b``."""

    inherit_cache = True
    symbol = "+"


class Sub(_Arith):
    """``a - b``."""

    inherit_cache = True
    symbol = "-"


class Mul(_Arith):
    """``a * b``."""

    inherit_cache = True
    symbol = "*"


class Div(_Arith):
    """``a / b`` for decimals; NULL when ``b`` is 0."""

    inherit_cache = True

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"(CAST({args[0]} AS NUMERIC) / NULLIF(CAST({args[1]} AS NUMERIC), 0))"
        return f"({args[0]} * 1.0 / NULLIF({args[1]}, 0))"


class IntDiv(_Arith):
    """``a / b`` of integers, truncated toward zero; NULL when ``b`` is 0."""

    inherit_cache = True

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"TRUNC(CAST({args[0]} AS NUMERIC) / NULLIF(CAST({args[1]} AS NUMERIC), 0))"
        return f"({args[0]} / NULLIF({args[1]}, 0))"


class Mod(_Arith):
    """The remainder of ``a / b`` with the sign of ``a``; NULL when ``b`` is 0."""

    inherit_cache = True

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"MOD(CAST({args[0]} AS NUMERIC), NULLIF(CAST({args[1]} AS NUMERIC), 0))"
        if SQLITE_MATH:
            return f"mod({args[0]}, {args[1]})"
        return (
            "(SELECT odata_a - odata_b * CAST(odata_a / odata_b AS INTEGER) "  # noqa: S608 - compiled arguments, not user text
            f"FROM (SELECT {args[0]} AS odata_a, NULLIF({args[1]}, 0) AS odata_b))"
        )


class Round(_Sql):
    """The nearest integer, halves away from zero."""

    inherit_cache = True
    type = Numeric()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"ROUND(CAST({args[0]} AS NUMERIC))"
        return f"ROUND({args[0]})"


class Floor(_Sql):
    """The largest integer not above the value."""

    inherit_cache = True
    type = Numeric()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"FLOOR(CAST({args[0]} AS NUMERIC))"
        if SQLITE_MATH:  # not floor(): SQLAlchemy's SQLite dialect replaces it with a Python function
            return f"(-ceil(-{args[0]}))"
        return (
            "(SELECT CAST(odata_x AS INTEGER) - (odata_x < CAST(odata_x AS INTEGER)) "  # noqa: S608 - compiled arguments, not user text
            f"FROM (SELECT {args[0]} AS odata_x))"
        )


class Ceiling(_Sql):
    """The smallest integer not below the value."""

    inherit_cache = True
    type = Numeric()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"CEIL(CAST({args[0]} AS NUMERIC))"
        if SQLITE_MATH:
            return f"ceil({args[0]})"
        return (
            "(SELECT CAST(odata_x AS INTEGER) + (odata_x > CAST(odata_x AS INTEGER)) "  # noqa: S608 - compiled arguments, not user text
            f"FROM (SELECT {args[0]} AS odata_x))"
        )


class Clamp(_Sql):
    """The value limited to 0 … 2**31 - 2, as an integer (for SQL's ``substr``, after adding 1)."""

    inherit_cache = True
    type = Integer()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return (
                "(SELECT CAST(TRUNC(CASE WHEN odata_v < 0 THEN 0 WHEN odata_v > 2147483646 THEN 2147483646 "  # noqa: S608
                f"ELSE odata_v END) AS INTEGER) FROM (SELECT CAST({args[0]} AS NUMERIC) AS odata_v) AS odata_let)"
            )
        return f"CAST(MAX(MIN({args[0]}, 2147483646), 0) AS INTEGER)"


class _UtcPart(_Sql):
    """A part of a timestamp, read in UTC."""

    inherit_cache = True
    type: TypeEngine[Any] = Integer()
    field: ClassVar[str] = "year"
    #: where the part is in SQLite's 'YYYY-MM-DD HH:MM:SS.ffffff' (its date functions round
    #: 23:59:59.9999995 up into the next day, or to NULL at the end of year 9999)
    sqlite_slice: ClassVar[tuple[int, int]] = (1, 4)

    def utc(self, arg: str) -> str:
        clause = next(iter(self.clauses))
        type_ = _base_type(clause.type)
        if isinstance(type_, DateTime) and type_.timezone:
            return f"({arg} AT TIME ZONE 'UTC')"
        return arg

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"CAST(FLOOR(EXTRACT({self.field} FROM {self.utc(args[0])})) AS INTEGER)"
        start, length = self.sqlite_slice
        return f"CAST(SUBSTR({args[0]}, {start}, {length}) AS INTEGER)"


class Year(_UtcPart):
    """The year, in UTC."""

    inherit_cache = True
    field = "year"
    sqlite_slice = (1, 4)


class Month(_UtcPart):
    """The month (1–12), in UTC."""

    inherit_cache = True
    field = "month"
    sqlite_slice = (6, 2)


class Day(_UtcPart):
    """The day of the month, in UTC."""

    inherit_cache = True
    field = "day"
    sqlite_slice = (9, 2)


class Hour(_UtcPart):
    """The hour (0–23), in UTC."""

    inherit_cache = True
    field = "hour"
    sqlite_slice = (12, 2)


class Minute(_UtcPart):
    """The minute."""

    inherit_cache = True
    field = "minute"
    sqlite_slice = (15, 2)


class Second(_UtcPart):
    """The whole seconds."""

    inherit_cache = True
    field = "second"
    sqlite_slice = (18, 2)


class FractionalSeconds(_UtcPart):
    """The fraction of the second (0 ≤ f < 1), to the microsecond."""

    inherit_cache = True
    type = Numeric()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            seconds = f"EXTRACT(second FROM {self.utc(args[0])})"
            return f"({seconds} - FLOOR({seconds}))"
        # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff': the fraction starts at character 20
        return f"ROUND(CAST('0' || SUBSTR({args[0]}, 20) AS REAL), 6)"


class Date_(_UtcPart):
    """The date, in UTC."""

    inherit_cache = True
    type = Date()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"CAST({self.utc(args[0])} AS DATE)"
        return f"SUBSTR({args[0]}, 1, 10)"


class Time_(_UtcPart):
    """The time of day, in UTC."""

    inherit_cache = True
    type = Time()

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        if dialect == "postgresql":
            return f"CAST({self.utc(args[0])} AS TIME)"
        return f"SUBSTR({args[0]}, 12)"


class _Json(_Sql):
    """A member of a JSON column: args are the column, the PostgreSQL path, the SQLite path."""

    inherit_cache = True
    pg_types: ClassVar[tuple[str, ...]] = ("string",)
    sqlite_types: ClassVar[tuple[str, ...]] = ("text",)
    pg_cast: ClassVar[str] = ""

    def sql(self, dialect: str, args: Sequence[str]) -> str:
        column, pg_path, sqlite_path = args
        if dialect == "postgresql":
            first = next(iter(self.clauses))
            typeof = "jsonb_typeof" if isinstance(_base_type(first.type), JSONB) else "json_typeof"
            wanted = ", ".join(f"'{t}'" for t in self.pg_types)
            value = f"({column} #>> {pg_path})"
            if self.pg_cast:
                value = f"CAST({value} AS {self.pg_cast})"
            return f"(CASE WHEN {typeof}({column} #> {pg_path}) IN ({wanted}) THEN {value} END)"
        wanted = ", ".join(f"'{t}'" for t in self.sqlite_types)
        return (
            f"(CASE WHEN json_type({column}, {sqlite_path}) IN ({wanted}) "
            f"THEN json_extract({column}, {sqlite_path}) END)"
        )


class JsonText(_Json):
    """A JSON string member as text."""

    inherit_cache = True
    type = String()


class JsonNumber(_Json):
    """A JSON number member as a number."""

    inherit_cache = True
    type = Numeric()
    pg_types = ("number",)
    sqlite_types = ("integer", "real")
    pg_cast = "NUMERIC"


class JsonBoolean(_Json):
    """A JSON true/false member as a boolean."""

    inherit_cache = True
    type = Boolean()
    pg_types = ("boolean",)
    sqlite_types = ("true", "false")
    pg_cast = "BOOLEAN"


def json_member(column: ColumnElement[Any], keys: Sequence[str], kind: str | None) -> ColumnElement[Any]:
    """Member ``keys`` of JSON ``column`` as ``kind`` (``number``, ``boolean``, else text)."""
    pg_path = literal(list(keys), ARRAY(String()))
    sqlite_path = literal("$" + "".join('."' + key.replace('"', "") + '"' for key in keys), String())
    construct = {"number": JsonNumber, "boolean": JsonBoolean}.get(kind or "", JsonText)
    return construct(column, pg_path, sqlite_path)
